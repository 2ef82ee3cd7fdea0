package worker

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/livegrid/livegrid/internal/media"
	"github.com/livegrid/livegrid/internal/queue"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type fakeTranscoder struct {
	transcode func(ctx context.Context, in SegmentInput) (*SegmentOutput, error)
}

func (f *fakeTranscoder) TranscodeSegment(ctx context.Context, in SegmentInput) (*SegmentOutput, error) {
	return f.transcode(ctx, in)
}

type fakeStore struct {
	get func(ctx context.Context, key string) ([]byte, error)
	put func(ctx context.Context, key string, data []byte, contentType string) error
}

func (f *fakeStore) Get(ctx context.Context, key string) ([]byte, error) { return f.get(ctx, key) }
func (f *fakeStore) Put(ctx context.Context, key string, data []byte, ct string) error {
	return f.put(ctx, key, data, ct)
}

type fakeResults struct {
	publish func(ctx context.Context, r queue.Result) (bool, error)
	done    func(ctx context.Context, stream, taskID string) (bool, error)
}

func (f *fakeResults) Publish(ctx context.Context, r queue.Result) (bool, error) {
	return f.publish(ctx, r)
}
func (f *fakeResults) Done(ctx context.Context, stream, taskID string) (bool, error) {
	return f.done(ctx, stream, taskID)
}

var (
	_ objectStore = (*fakeStore)(nil)
	_ transcoder  = (*fakeTranscoder)(nil)
	_ resultLog   = (*fakeResults)(nil)
)

func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

// output is a two-rendition transcode of one source segment.
func output() *SegmentOutput {
	return &SegmentOutput{Renditions: []RenditionOutput{
		{Rendition: media.Rendition{Name: "180p", Kind: "video", Width: 320, Height: 180, Codec: "avc1.64000d",
			Encoder: "libx264", Timescale: 90000, Init: []byte("video-init")},
			Segments: []media.Segment{{Start: 0, Duration: 90000, Timescale: 90000, Frames: 15, Data: []byte("v0")},
				{Start: 90000, Duration: 90000, Timescale: 90000, Frames: 15, Data: []byte("v1")}}},
		{Rendition: media.Rendition{Name: "audio", Kind: "audio", Codec: "mp4a.40.2", Encoder: "copy",
			Timescale: 48000, SampleRate: 48000, Channels: 2, Init: []byte("audio-init")},
			Segments: []media.Segment{{Start: 0, Duration: 96000, Timescale: 48000, Data: []byte("a0")}}},
	}}
}

func taskPayload(t *testing.T, change func(*queue.Task)) []byte {
	t.Helper()
	task := queue.Task{
		Stream: "cam1", Session: "s1", Seq: 5,
		Source:          queue.Source{Key: "src/cam1/5.flv", Format: "flv"},
		Ladder:          queue.Ladder{Profile: "default", Ref: "builtin:default"},
		SegmentDuration: time.Second, Start: 900000, End: 1080000,
	}
	if change != nil {
		change(&task)
	}
	b, err := task.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rig is a handler on fakes that record what they were asked.
type rig struct {
	h         *handler
	mu        sync.Mutex
	puts      map[string]string // key -> content type
	published []queue.Result
	calls     int
	done      bool
	getErr    error
	trErr     error
}

func newRig() *rig {
	r := &rig{puts: map[string]string{}}
	r.h = &handler{
		worker: "w1", log: quietLog(), http: http.DefaultClient,
		now: func() time.Time { return time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC) },
		tr: &fakeTranscoder{transcode: func(ctx context.Context, in SegmentInput) (*SegmentOutput, error) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.calls++
			if r.trErr != nil {
				return nil, r.trErr
			}
			if in.Format != "flv" || in.Ladder == nil || in.End != 1080000 || in.SegmentDuration != time.Second || string(in.Data) != "FLV" ||
				in.Stream != "cam1" || in.Session != "s1" {
				return nil, errors.New("transcoder got the wrong input")
			}
			return output(), nil
		}},
		store: &fakeStore{
			get: func(_ context.Context, key string) ([]byte, error) {
				r.mu.Lock()
				defer r.mu.Unlock()
				return []byte("FLV"), r.getErr
			},
			put: func(_ context.Context, key string, _ []byte, ct string) error {
				r.mu.Lock()
				defer r.mu.Unlock()
				r.puts[key] = ct
				return nil
			},
		},
		results: &fakeResults{
			publish: func(_ context.Context, res queue.Result) (bool, error) {
				r.mu.Lock()
				defer r.mu.Unlock()
				for _, p := range r.published {
					if p.TaskID == res.TaskID {
						return false, nil
					}
				}
				r.published = append(r.published, res)
				return true, nil
			},
			done: func(context.Context, string, string) (bool, error) {
				r.mu.Lock()
				defer r.mu.Unlock()
				return r.done, nil
			},
		},
	}
	return r
}

func TestProcess(t *testing.T) {
	tests := []struct {
		name      string
		setup     func(*rig)
		payload   func(*queue.Task)
		retried   int
		wantErr   bool
		skipRetry bool // the segment is quarantined
		calls     int  // transcoder calls
	}{
		{name: "transcoded", calls: 1},
		{name: "inline source", payload: func(t *queue.Task) { t.Source = queue.Source{Data: []byte("FLV"), Format: "flv"} },
			setup: func(r *rig) { r.getErr = errors.New("store must not be read") }, calls: 1},
		{name: "bad payload", payload: func(t *queue.Task) { t.Stream = "../x" }, wantErr: true, skipRetry: true},
		{name: "bad ladder", payload: func(t *queue.Task) { t.Ladder = queue.Ladder{YAML: "rungs: 3"} }, wantErr: true, skipRetry: true},
		{name: "bad source", setup: func(r *rig) { r.trErr = ErrBadSource }, wantErr: true, skipRetry: true, calls: 1},
		{name: "first failure retried", setup: func(r *rig) { r.trErr = errors.New("nvenc: device lost") },
			wantErr: true, calls: 1},
		{name: "second failure quarantined", setup: func(r *rig) { r.trErr = errors.New("nvenc: device lost") },
			retried: 1, wantErr: true, skipRetry: true, calls: 1},
		{name: "failure on another worker counts", setup: func(r *rig) { r.trErr = errors.New("timeout") },
			payload: func(t *queue.Task) { t.PriorFailures = 1 }, wantErr: true, skipRetry: true, calls: 1},
		{name: "failed twice before this run", retried: 2, wantErr: true, skipRetry: true},
		{name: "source missing is retried", setup: func(r *rig) { r.getErr = errors.New("no such key") }, wantErr: true},
		{name: "done elsewhere", setup: func(r *rig) { r.done = true }},
		{name: "attempt expired", payload: func(t *queue.Task) { t.Deadline = time.Date(2024, 5, 1, 11, 59, 59, 0, time.UTC) },
			wantErr: true, skipRetry: true},
		{name: "attempt not expired yet", payload: func(t *queue.Task) { t.Deadline = time.Date(2024, 5, 1, 12, 0, 1, 0, time.UTC) }, calls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig()
			if tt.setup != nil {
				tt.setup(r)
			}
			err := r.h.process(context.Background(), taskPayload(t, tt.payload), tt.retried)
			if tt.wantErr != (err != nil) || tt.skipRetry != errors.Is(err, asynq.SkipRetry) {
				t.Fatalf("process = %v; want error %v, SkipRetry %v", err, tt.wantErr, tt.skipRetry)
			}
			if r.calls != tt.calls {
				t.Fatalf("%d transcoder calls, want %d", r.calls, tt.calls)
			}
			if r.h.busy.Load() != 0 || len(r.h.active.list()) != 0 {
				t.Fatal("task still counted as running")
			}
			if err != nil || r.done {
				if len(r.published) != 0 {
					t.Fatalf("published %+v", r.published)
				}
				return
			}
			checkStored(t, r)
		})
	}
}

func checkStored(t *testing.T, r *rig) {
	t.Helper()
	wantKeys := map[string]string{
		"live/cam1/s1/180p/00000005-0.m4s":  "video/iso.segment",
		"live/cam1/s1/180p/00000005-1.m4s":  "video/iso.segment",
		"live/cam1/s1/audio/00000005-0.m4s": "audio/mp4",
	}
	for k, ct := range wantKeys {
		if r.puts[k] != ct {
			t.Errorf("key %s stored as %q, want %q", k, r.puts[k], ct)
		}
	}
	if len(r.published) != 1 {
		t.Fatalf("published %d results", len(r.published))
	}
	res := r.published[0]
	if res.Status != queue.StatusDone || res.Worker != "w1" || res.TaskID != "seg:cam1:s1:5" || res.Start != 900000 ||
		res.End != 1080000 || len(res.Renditions) != 2 {
		t.Fatalf("result %+v", res)
	}
	v := res.Renditions[0]
	if v.Name != "180p" || v.Encoder != "libx264" || len(v.Segments) != 2 || v.Segments[1].Start != 90000 ||
		v.Segments[1].Key != "live/cam1/s1/180p/00000005-1.m4s" || v.Segments[1].Size != 2 || v.Timescale != 90000 {
		t.Fatalf("video rendition %+v", v)
	}
	if !strings.HasPrefix(v.InitKey, "live/cam1/s1/180p/init-") || r.puts[v.InitKey] != "video/mp4" || len(v.InitHash) != 64 {
		t.Fatalf("init %s (%q) hash %s", v.InitKey, r.puts[v.InitKey], v.InitHash)
	}
}

func TestInitWrittenOncePerHash(t *testing.T) {
	r := newRig()
	count := map[string]int{}
	put := r.h.store.(*fakeStore).put
	r.h.store.(*fakeStore).put = func(ctx context.Context, key string, data []byte, ct string) error {
		count[key]++
		return put(ctx, key, data, ct)
	}
	for seq := range uint64(3) {
		if err := r.h.process(context.Background(), taskPayload(t, func(t *queue.Task) { t.Seq = seq }), 0); err != nil {
			t.Fatal(err)
		}
	}
	inits := 0
	for k, n := range count {
		if strings.Contains(k, "/init-") {
			inits++
			if n != 1 {
				t.Errorf("init %s written %d times", k, n)
			}
		}
	}
	if inits != 2 || len(r.published) != 3 {
		t.Fatalf("%d inits, %d results; want 2 and 3", inits, len(r.published))
	}
}

func TestSourceFromOrigin(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != "/src/5.flv" {
			http.NotFound(w, req)
			return
		}
		io.WriteString(w, "FLV")
	}))
	defer origin.Close()
	tests := []struct {
		path    string
		wantErr bool
	}{{"/src/5.flv", false}, {"/src/6.flv", true}}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			r := newRig()
			r.h.http = origin.Client()
			err := r.h.process(context.Background(), taskPayload(t, func(t *queue.Task) {
				t.Source = queue.Source{URL: origin.URL + tt.path, Format: "flv"}
			}), 0)
			if tt.wantErr != (err != nil) || errors.Is(err, asynq.SkipRetry) {
				t.Fatalf("process = %v, want error %v (retried)", err, tt.wantErr)
			}
		})
	}
	origin.Client().CloseIdleConnections()
}

// TestQuarantineAfterTwoFailures plays asynq's part: every failed run goes
// to the error handler, which announces the gap once the segment is given up.
func TestQuarantineAfterTwoFailures(t *testing.T) {
	const maxRetry = 2
	r := newRig()
	r.trErr = errors.New("encoder failed: h264_nvenc")
	payload := taskPayload(t, nil)
	var runs int
	for retried := 0; retried <= maxRetry; retried++ {
		runs++
		err := r.h.process(context.Background(), payload, retried)
		if err == nil {
			t.Fatal("failing segment succeeded")
		}
		r.h.failed(context.Background(), payload, retried, maxRetry, err)
		if errors.Is(err, asynq.SkipRetry) {
			break // archived: no more runs
		}
	}
	if runs != 2 || r.calls != 2 {
		t.Fatalf("%d runs, %d transcodes; want 2 of each", runs, r.calls)
	}
	if len(r.published) != 1 {
		t.Fatalf("%d announcements, want 1", len(r.published))
	}
	if g := r.published[0]; g.Status != queue.StatusQuarantined || g.Seq != 5 || g.Worker != "w1" ||
		!strings.Contains(g.Error, "h264_nvenc") || g.End != 1080000 {
		t.Fatalf("gap %+v", g)
	}
}

var expiredPayload = func() []byte {
	task := queue.Task{
		Stream: "cam1", Session: "s1", Seq: 5, Source: queue.Source{Key: "k", Format: "flv"},
		Ladder: queue.Ladder{Ref: "builtin:default"}, SegmentDuration: time.Second, End: -1,
		Deadline: time.Date(2024, 5, 1, 11, 59, 0, 0, time.UTC), // the rig's clock says 12:00
	}
	b, _ := task.Marshal()
	return b
}()

func TestFailed(t *testing.T) {
	tests := []struct {
		name      string
		payload   []byte
		retried   int
		err       error
		announced bool
	}{
		{"retry left", nil, 0, errors.New("boom"), false},
		{"retries ran out (a timeout)", nil, 2, context.DeadlineExceeded, true},
		{"handler gave up", nil, 0, errors.Join(ErrBadSource, asynq.SkipRetry), true},
		{"poison without a name", []byte("junk"), 0, asynq.SkipRetry, false},
		{"attempt expired in the queue", expiredPayload, 0, context.DeadlineExceeded, false},
		{"attempt expired at the handler", expiredPayload, 0, errors.Join(errExpired, asynq.SkipRetry), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig()
			p := tt.payload
			if p == nil {
				p = taskPayload(t, nil)
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // the run's context is often over by now
			r.h.failed(ctx, p, tt.retried, 2, tt.err)
			if got := len(r.published) == 1; got != tt.announced {
				t.Fatalf("announced %v, want %v", got, tt.announced)
			}
		})
	}
}
