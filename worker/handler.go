package worker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/livegrid/livegrid/internal/media"
	"github.com/livegrid/livegrid/internal/queue"
	"github.com/livegrid/livegrid/profiles"
)

// transcoder transcodes one source segment into every rung of a ladder.
type transcoder interface {
	TranscodeSegment(ctx context.Context, in SegmentInput) (*SegmentOutput, error)
}

// SegmentInput is one source segment to transcode.
type SegmentInput struct {
	Data            []byte
	Format          string // demuxer name, "flv"
	Ladder          *profiles.Ladder
	SegmentDuration time.Duration // output segment target
	End             int64         // source time (90 kHz) of the next segment; -1 unknown

	// Stream and Session name the publish the segment belongs to and Seq
	// its number there, so a transcoder can keep a stream's encoders warm
	// (EngineTranscoder); Discontinuity marks a segment that does not
	// continue the previous one's timeline.
	Stream, Session string
	Seq             uint64
	Discontinuity   bool
}

// SegmentOutput is the whole ladder for one source segment.
type SegmentOutput struct {
	Renditions []RenditionOutput
	Fallbacks  int // encoder fallbacks on the way
}

// RenditionOutput is one rendition's init segment and media segments.
type RenditionOutput struct {
	media.Rendition
	Segments []media.Segment
}

// ErrBadSource marks a source segment that cannot be transcoded (junk,
// no video, a codec nothing decodes): another run would fail the same way,
// so the segment is quarantined at once.
var ErrBadSource = errors.New("worker: source segment cannot be transcoded")

// errExpired marks a run of an attempt past its deadline: the scheduler
// resubmits the segment or declares the gap, so the worker announces nothing.
var errExpired = errors.New("attempt expired")

// quarantineAfter is the number of failed runs after which a segment is
// given up: a second failure is more likely the segment's fault than the
// worker's.
const quarantineAfter = 2

// maxSourceBytes bounds a source fetched by URL.
const maxSourceBytes = 256 << 20

// handler runs "transcode:segment" tasks.
type handler struct {
	worker  string
	tr      transcoder
	store   objectStore
	results resultLog
	http    *http.Client
	now     func() time.Time
	log     *slog.Logger
	busy    atomic.Int64
	active  activeSet
	ladders ladderCache
	inits   keySet
}

// ProcessTask is the asynq handler.
func (h *handler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	if t.Type() != queue.TypeTranscodeSegment {
		return fmt.Errorf("worker: unknown task type %q: %w", t.Type(), asynq.SkipRetry)
	}
	retried, _ := asynq.GetRetryCount(ctx)
	return h.process(ctx, t.Payload(), retried)
}

// process runs one task whose queue run number is retried (0 first). An
// error wrapping asynq.SkipRetry quarantines the segment.
func (h *handler) process(ctx context.Context, payload []byte, retried int) error {
	h.busy.Add(1)
	defer h.busy.Add(-1)
	task, err := queue.DecodeTask(payload)
	if err != nil {
		return fmt.Errorf("worker: %w: %w", err, asynq.SkipRetry)
	}
	id := task.ID()
	qid := queue.AttemptID(id, task.Attempt)
	h.active.add(qid)
	defer h.active.remove(qid)
	failures := task.PriorFailures + retried
	if failures >= quarantineAfter {
		// Failures that never reached this code (timeouts, lost workers)
		// count too.
		return fmt.Errorf("worker: segment %s failed %d times: %w", id, failures, asynq.SkipRetry)
	}
	if !task.Deadline.IsZero() && h.now().After(task.Deadline) {
		return fmt.Errorf("worker: %s: %w: %w", qid, errExpired, asynq.SkipRetry)
	}
	if done, err := h.results.Done(ctx, task.Stream, id); err == nil && done {
		h.log.Debug("segment already done elsewhere", "task", id)
		return nil
	}
	res, err := h.transcode(ctx, task)
	if err != nil {
		if errors.Is(err, ErrBadSource) || errors.Is(err, queue.ErrBadPayload) {
			return fmt.Errorf("worker: %s: %w: %w", id, err, asynq.SkipRetry)
		}
		if failures+1 >= quarantineAfter {
			return fmt.Errorf("worker: %s, failure %d: %w: %w", id, failures+1, err, asynq.SkipRetry)
		}
		return fmt.Errorf("worker: %s: %w", id, err)
	}
	published, err := h.results.Publish(ctx, res)
	if err != nil {
		return fmt.Errorf("worker: %s: %w", id, err) // the rerun rewrites the same keys
	}
	if !published {
		h.log.Debug("another run announced the segment first", "task", id)
	}
	return nil
}

// handleError is asynq's error handler: it sees every failed run, and
// announces a segment given up, whether the handler said so (SkipRetry),
// the retries ran out, or the run timed out before the handler could say
// anything.
func (h *handler) handleError(ctx context.Context, t *asynq.Task, err error) {
	retried, _ := asynq.GetRetryCount(ctx)
	maxRetry, _ := asynq.GetMaxRetry(ctx)
	h.failed(ctx, t.Payload(), retried, maxRetry, err)
}

func (h *handler) failed(ctx context.Context, payload []byte, retried, maxRetry int, err error) {
	task, derr := queue.DecodeTask(payload)
	if errors.Is(err, errExpired) || errors.Is(err, context.DeadlineExceeded) && !task.Deadline.IsZero() && !h.now().Before(task.Deadline) {
		h.log.Info("attempt expired; the scheduler decides what next", "task", queue.AttemptID(task.ID(), task.Attempt))
		return
	}
	final := errors.Is(err, asynq.SkipRetry) || retried >= maxRetry
	if !final {
		h.log.Warn("segment failed; it will run again", "task", task.ID(), "retry", retried, "err", err)
		return
	}
	if derr != nil && (!queue.ValidName(task.Stream) || !queue.ValidName(task.Session)) {
		// Not even the segment can be named, so there is no one to tell.
		h.log.Error("poison task dropped", "err", err)
		return
	}
	id := task.ID()
	h.log.Error("segment quarantined; the stream goes on with a gap", "task", id, "err", err)
	r := queue.Result{
		TaskID: id, Stream: task.Stream, Session: task.Session, Seq: task.Seq, Attempt: task.Attempt,
		Worker: h.worker, Status: queue.StatusQuarantined, Error: err.Error(),
		Start: task.Start, End: task.End, Discontinuity: task.Discontinuity, Finished: h.now(),
	}
	// The run's context may be over (a timeout); the announcement is not.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, perr := h.results.Publish(pctx, r); perr != nil {
		h.log.Error("announce quarantined segment", "task", id, "err", perr)
	}
}

// transcode fetches, transcodes and stores one segment and returns its result.
func (h *handler) transcode(ctx context.Context, task queue.Task) (queue.Result, error) {
	data, err := h.fetch(ctx, task.Source)
	if err != nil {
		return queue.Result{}, err
	}
	ladder, err := h.ladders.load(task.Ladder)
	if err != nil {
		return queue.Result{}, err
	}
	start := h.now()
	out, err := h.tr.TranscodeSegment(ctx, SegmentInput{
		Data: data, Format: task.Source.Format, Ladder: ladder,
		SegmentDuration: task.SegmentDuration, End: task.End,
		Stream: task.Stream, Session: task.Session, Seq: task.Seq, Discontinuity: task.Discontinuity,
	})
	if err != nil {
		return queue.Result{}, fmt.Errorf("transcode: %w", err)
	}
	took := h.now().Sub(start)
	rends, err := h.save(ctx, task, out)
	if err != nil {
		return queue.Result{}, err
	}
	return queue.Result{
		TaskID: task.ID(), Stream: task.Stream, Session: task.Session, Seq: task.Seq, Attempt: task.Attempt,
		Worker: h.worker, Status: queue.StatusDone, Start: task.Start, End: task.End,
		Discontinuity: task.Discontinuity, Renditions: rends, TranscodeTime: took,
		Fallbacks: out.Fallbacks, Finished: h.now(),
	}, nil
}

func (h *handler) fetch(ctx context.Context, src queue.Source) ([]byte, error) {
	switch {
	case len(src.Data) > 0:
		return src.Data, nil
	case src.Key != "":
		b, err := h.store.Get(ctx, src.Key)
		if err != nil {
			return nil, fmt.Errorf("fetch source %s: %w", src.Key, err)
		}
		return b, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("fetch source: %w: %w", queue.ErrBadPayload, err)
	}
	resp, err := h.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch source: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch source %s: %s", src.URL, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxSourceBytes+1))
	if err != nil {
		return nil, fmt.Errorf("fetch source %s: %w", src.URL, err)
	}
	if len(b) > maxSourceBytes {
		return nil, fmt.Errorf("fetch source %s: %w: larger than %d bytes", src.URL, ErrBadSource, maxSourceBytes)
	}
	return b, nil
}

// save writes every rendition to the store: each distinct init segment once
// (its key is its hash), then the media segments.
func (h *handler) save(ctx context.Context, task queue.Task, out *SegmentOutput) ([]queue.RenditionResult, error) {
	rends := make([]queue.RenditionResult, 0, len(out.Renditions))
	for _, r := range out.Renditions {
		if !queue.ValidName(r.Name) {
			return nil, fmt.Errorf("save: rendition name %q is not a valid key part", r.Name)
		}
		sum := sha256.Sum256(r.Init)
		rr := queue.RenditionResult{
			Name: r.Name, Kind: r.Kind, Codec: r.Codec, Width: r.Width, Height: r.Height,
			FrameRate: r.FrameRate, Bitrate: r.Bitrate, SampleRate: r.SampleRate, Channels: r.Channels,
			Encoder: r.Encoder, InitHash: hex.EncodeToString(sum[:]), Timescale: r.Timescale,
		}
		rr.InitKey = queue.InitKey(task.Stream, task.Session, r.Name, rr.InitHash)
		if !h.inits.has(rr.InitKey) {
			if err := h.store.Put(ctx, rr.InitKey, r.Init, contentType(r.Kind, true)); err != nil {
				return nil, fmt.Errorf("save init %s: %w", rr.InitKey, err)
			}
			h.inits.add(rr.InitKey)
		}
		for i, s := range r.Segments {
			key := queue.SegmentKey(task.Stream, task.Session, r.Name, task.Seq, i)
			if err := h.store.Put(ctx, key, s.Data, contentType(r.Kind, false)); err != nil {
				return nil, fmt.Errorf("save segment %s: %w", key, err)
			}
			rr.Segments = append(rr.Segments, queue.SegmentRef{
				Key: key, Start: s.Start, Duration: s.Duration, Timescale: s.Timescale, Frames: s.Frames, Size: len(s.Data),
			})
		}
		rends = append(rends, rr)
	}
	return rends, nil
}

func contentType(kind string, init bool) string {
	switch {
	case kind == "audio":
		return "audio/mp4"
	case init:
		return "video/mp4"
	}
	return "video/iso.segment"
}

// ladderCache keeps parsed ladders by their text: a stream sends the same
// ladder with every segment.
type ladderCache struct {
	mu sync.Mutex
	m  map[queue.Ladder]*profiles.Ladder
}

const maxCachedLadders = 64

func (c *ladderCache) load(l queue.Ladder) (*profiles.Ladder, error) {
	c.mu.Lock()
	lad, ok := c.m[l]
	c.mu.Unlock()
	if ok {
		return lad, nil
	}
	lad, err := l.Load()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCachedLadders {
		c.m = map[queue.Ladder]*profiles.Ladder{}
	}
	c.m[l] = lad
	return lad, nil
}

// keySet remembers init segments written, so each is written once per
// worker; it starts over when full (a rewrite is only a wasted Put).
type keySet struct {
	mu sync.Mutex
	m  map[string]struct{}
}

const maxInitKeys = 4096

func (s *keySet) has(k string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.m[k]
	return ok
}

func (s *keySet) add(k string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil || len(s.m) >= maxInitKeys {
		s.m = map[string]struct{}{}
	}
	s.m[k] = struct{}{}
}

// activeSet is the set of tasks running now, by queue id, for heartbeats.
type activeSet struct {
	mu sync.Mutex
	m  map[string]int
}

func (a *activeSet) add(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m == nil {
		a.m = map[string]int{}
	}
	a.m[id]++
}

func (a *activeSet) remove(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m[id]--; a.m[id] <= 0 {
		delete(a.m, id)
	}
}

func (a *activeSet) list() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]string, 0, len(a.m))
	for id := range a.m {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}
