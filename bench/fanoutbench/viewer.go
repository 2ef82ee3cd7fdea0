package fanoutbench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/livegrid/livegrid/bench"
	"github.com/livegrid/livegrid/internal/flv"
)

// viewer is one simulated player. Its loop goroutine writes it; the
// sampler reads it, so everything but the byte counter sits behind mu.
type viewer struct {
	id    int
	bytes atomic.Int64 // body bytes received, playlists included

	mu           sync.Mutex
	startedAt    time.Time // its first request
	rendition    string    // HLS: the variant it plays
	connected    bool      // a session is up (FLV: 200 received; HLS: joined)
	lastData     time.Time // last media received (FLV tag, HLS segment)
	holdWindow   time.Duration
	ttfk         time.Duration
	hasTTFK      bool
	stalls       int
	stallTime    time.Duration
	stalledSince time.Time // HLS: zero unless a segment is overdue now
	drops        int
	errors       int
	skipped      int // HLS: segments that left the window before it fetched them
}

// viewerSnapshot is a viewer read at one instant.
type viewerSnapshot struct {
	ID           int
	Rendition    string
	Started      bool
	StartedAt    time.Time
	Bytes        int64
	Connected    bool
	Held         bool
	HasTTFK      bool
	TTFK         time.Duration
	Stalls       int
	StallTime    time.Duration
	Drops        int
	Errors       int
	Skipped      int
	LastData     time.Time
	StalledSince time.Time
}

func (v *viewer) snapshot(now time.Time) viewerSnapshot {
	v.mu.Lock()
	defer v.mu.Unlock()
	s := viewerSnapshot{ID: v.id, Rendition: v.rendition, Started: !v.startedAt.IsZero(), StartedAt: v.startedAt,
		Bytes: v.bytes.Load(), Connected: v.connected, HasTTFK: v.hasTTFK, TTFK: v.ttfk,
		Stalls: v.stalls, StallTime: v.stallTime, Drops: v.drops, Errors: v.errors, Skipped: v.skipped,
		LastData: v.lastData, StalledSince: v.stalledSince}
	s.Held = held(s.Connected, s.LastData, v.holdWindow, now)
	return s
}

// held is the definition of a held viewer: its session is up and media
// arrived within the hold window (FLV: 5 s or two stall gaps, whichever is
// longer; HLS: three target durations). The window is longer than a stall
// so that a second without CPU for the bench itself, right at the end,
// does not read as viewers lost: stalls count the gaps.
func held(connected bool, lastData time.Time, window time.Duration, now time.Time) bool {
	return connected && !lastData.IsZero() && now.Sub(lastData) <= window
}

func (v *viewer) start(t time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.startedAt.IsZero() {
		v.startedAt = t
	}
}

func (v *viewer) connect(hold time.Duration) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.connected, v.holdWindow = true, hold
}

// disconnect ends a session; a session that was up counts as a drop.
func (v *viewer) disconnect() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.connected {
		v.drops++
	}
	v.connected = false
	v.stalledSince = time.Time{}
}

func (v *viewer) media(t time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.lastData = t
}

// keyframe records the time to first keyframe, once per viewer.
func (v *viewer) keyframe(d time.Duration) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.hasTTFK {
		v.ttfk, v.hasTTFK = d, true
	}
}

// gap records an FLV stall: tags stopped for d.
func (v *viewer) gap(d time.Duration) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.stalls++
	v.stallTime += d
}

// overdue records whether an HLS segment is overdue at now: entering that
// state (from since) counts one stall, leaving it adds the stall's time.
func (v *viewer) overdue(is bool, since, now time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	switch {
	case is && v.stalledSince.IsZero():
		v.stalls++
		v.stalledSince = since
	case !is && !v.stalledSince.IsZero():
		v.stallTime += now.Sub(v.stalledSince)
		v.stalledSince = time.Time{}
	}
}

func (v *viewer) failed() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.errors++
}

func (v *viewer) skip(n int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.skipped += n
}

func (v *viewer) setRendition(name string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.rendition = name
}

// countingReader adds what it reads to n.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.n.Add(int64(k))
	return k, err
}

// Errors a viewer session ends with, besides transport errors.
var (
	errEnded    = errors.New("stream ended")
	errTooLarge = errors.New("response too large")
)

// statusError is a response other than 200.
type statusError struct{ code int }

func (e statusError) Error() string { return fmt.Sprintf("HTTP %d", e.code) }

// errorKind names an error for the report's error_kinds.
func errorKind(err error) string {
	var se statusError
	var ne net.Error
	var ue *url.Error
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("http_%d", se.code)
	case errors.Is(err, errEnded):
		return "ended"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, bench.ErrPlaylist), errors.Is(err, flv.ErrMalformed), errors.Is(err, flv.ErrBadHeader),
		errors.Is(err, flv.ErrTooLarge), errors.Is(err, errTooLarge):
		return "parse"
	case errors.As(err, &ue) && ue.Op != "" && !isBodyError(err):
		return "connect"
	}
	return "read"
}

// isBodyError tells a failure reading a body apart from one getting the
// response.
func isBodyError(err error) bool {
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, flv.ErrTruncated)
}

// flvSession plays u as HTTP-FLV until ctx ends (nil) or the stream
// breaks or ends (an error).
func (r *runner) flvSession(ctx context.Context, v *viewer, u string) error {
	start := r.now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	r.requests.Add(1)
	resp, err := r.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return statusError{resp.StatusCode}
	}
	v.connect(max(5*time.Second, 2*r.cfg.StallGap))
	// A stream silent for the idle timeout is dead: give up on it, as a
	// player would, and reconnect.
	idle := time.AfterFunc(r.cfg.IdleTimeout, cancel)
	defer idle.Stop()
	fr := flv.NewReader(bufio.NewReaderSize(countingReader{resp.Body, &v.bytes}, 32<<10))
	var last time.Time
	for {
		tag, err := fr.ReadTag()
		if errors.Is(err, flv.ErrUnsupported) {
			continue
		}
		if err != nil {
			if ctx.Err() != nil && r.stopping.Load() {
				return nil
			}
			if errors.Is(err, io.EOF) {
				return errEnded
			}
			if ctx.Err() != nil {
				return fmt.Errorf("no tag for %s: %w", r.cfg.IdleTimeout, context.DeadlineExceeded)
			}
			return err
		}
		idle.Reset(r.cfg.IdleTimeout)
		now := r.now()
		if !last.IsZero() && now.Sub(last) > r.cfg.StallGap {
			v.gap(now.Sub(last))
		}
		last = now
		v.media(now)
		if tag.Type == flv.TagVideo {
			if vi, err := flv.ParseVideo(tag.Data); err == nil && vi.Keyframe {
				v.keyframe(now.Sub(start))
			}
		}
	}
}

// get fetches u whole, counting its body into the viewer's bytes.
func (r *runner) get(ctx context.Context, v *viewer, u string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	r.requests.Add(1)
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil, statusError{resp.StatusCode}
	}
	b, err := io.ReadAll(io.LimitReader(countingReader{resp.Body, &v.bytes}, maxBody+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxBody {
		return nil, fmt.Errorf("%s: %w (over %d bytes)", u, errTooLarge, maxBody)
	}
	return b, nil
}

// maxBody bounds one playlist or segment: a 10 s segment at 50 Mbit/s is
// about 60 MiB.
const maxBody = 128 << 20

// track is one media playlist an HLS viewer follows: its video
// rendition, and the audio rendition that goes with it.
type track struct {
	playlist *url.URL
	video    bool
	target   time.Duration // EXT-X-TARGETDURATION
	next     uint64        // the next sequence number to fetch
	mapURI   string        // the init segment fetched last
	due      time.Time     // when the next segment should be listed
	overdue  bool
	dueSince time.Time
}

// hlsSession plays the stream's multivariant playlist at master: it picks
// a variant, joins each of its tracks at the live edge (init segment and
// the newest media segment), then polls the media playlists every half
// target duration and fetches each new segment. It returns nil when ctx
// ends and an error when the stream ends or stays unreachable for three
// target durations.
func (r *runner) hlsSession(ctx context.Context, v *viewer, master string) error {
	start := r.now()
	mu, err := url.Parse(master)
	if err != nil {
		return err
	}
	body, err := r.get(ctx, v, master)
	if err != nil {
		return err
	}
	m, err := bench.ParseMasterPlaylist(body)
	if err != nil {
		return err
	}
	variant, err := pickVariant(m, r.cfg.Rendition, v.id)
	if err != nil {
		return err
	}
	v.setRendition(variant.Name)
	tracks := []*track{{playlist: resolve(mu, variant.URI), video: true}}
	if a := m.AudioFor(variant); a != "" && r.cfg.Audio {
		tracks = append(tracks, &track{playlist: resolve(mu, a)})
	}
	for _, t := range tracks {
		if err := r.join(ctx, v, t, start); err != nil {
			return err
		}
	}
	target := tracks[0].target
	v.connect(3 * target)
	poll := min(max(target/2, 100*time.Millisecond), 5*time.Second)
	tick := time.NewTicker(poll)
	defer tick.Stop()
	var failingSince time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		var roundErr error
		for _, t := range tracks {
			if err := r.refresh(ctx, v, t, poll); err != nil {
				roundErr = err
			}
		}
		now := r.now()
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(roundErr, errEnded) {
			return roundErr
		}
		if roundErr != nil {
			if failingSince.IsZero() {
				failingSince = now
			}
			if now.Sub(failingSince) > 3*target {
				return fmt.Errorf("media playlist failing for %s: %w", now.Sub(failingSince).Round(time.Millisecond), roundErr)
			}
			v.failed()
			r.errs.add(errorKind(roundErr))
		} else {
			failingSince = time.Time{}
		}
		since, late := time.Time{}, false
		for _, t := range tracks {
			if t.overdue && (!late || t.dueSince.Before(since)) {
				since, late = t.dueSince, true
			}
		}
		v.overdue(late, since, now)
	}
}

// join fetches a track's playlist, its init segment and its newest media
// segment; for the video track, the time to first keyframe is from the
// session's first request to that segment's last byte.
func (r *runner) join(ctx context.Context, v *viewer, t *track, start time.Time) error {
	body, err := r.get(ctx, v, t.playlist.String())
	if err != nil {
		return err
	}
	p, err := bench.ParseMediaPlaylist(body)
	if err != nil {
		return err
	}
	if p.Ended {
		return errEnded
	}
	if len(p.Segments) == 0 {
		return fmt.Errorf("%w: no segment listed yet", bench.ErrPlaylist)
	}
	t.target = time.Duration(p.TargetDuration * float64(time.Second))
	if t.target <= 0 {
		t.target = 2 * time.Second
	}
	s := p.Segments[len(p.Segments)-1]
	if err := r.fetchSegment(ctx, v, t, s); err != nil {
		return err
	}
	now := r.now()
	if t.video {
		v.keyframe(now.Sub(start))
	}
	v.media(now)
	t.next = s.Seq + 1
	// It was listed up to one segment ago: due one segment from now at the
	// latest, plus the polling slack.
	t.due = now.Add(segDuration(s, t.target) + t.target/2)
	return nil
}

// refresh polls a track's playlist and fetches the segments new since the
// last poll; a segment not listed by its due time marks the track overdue.
func (r *runner) refresh(ctx context.Context, v *viewer, t *track, poll time.Duration) error {
	body, err := r.get(ctx, v, t.playlist.String())
	if err != nil {
		return err
	}
	p, err := bench.ParseMediaPlaylist(body)
	if err != nil {
		return err
	}
	fresh := false
	for _, s := range p.Segments {
		if s.Seq < t.next {
			continue
		}
		if s.Seq > t.next {
			v.skip(int(s.Seq - t.next))
		}
		if err := r.fetchSegment(ctx, v, t, s); err != nil {
			return err
		}
		now := r.now()
		v.media(now)
		t.next = s.Seq + 1
		t.due = now.Add(segDuration(s, t.target) + max(t.target/2, poll))
		fresh = true
	}
	now := r.now()
	switch {
	case fresh:
		t.overdue = false
	case !t.overdue && now.After(t.due):
		t.overdue, t.dueSince = true, t.due
	}
	if p.Ended && !fresh {
		return errEnded
	}
	return nil
}

// fetchSegment fetches a segment, and first its init segment when it is
// new to the track.
func (r *runner) fetchSegment(ctx context.Context, v *viewer, t *track, s bench.PlaylistSegment) error {
	if s.Map != "" && s.Map != t.mapURI {
		if _, err := r.get(ctx, v, resolve(t.playlist, s.Map).String()); err != nil {
			return err
		}
		t.mapURI = s.Map
	}
	_, err := r.get(ctx, v, resolve(t.playlist, s.URI).String())
	return err
}

func segDuration(s bench.PlaylistSegment, target time.Duration) time.Duration {
	if s.Duration > 0 {
		return time.Duration(s.Duration * float64(time.Second))
	}
	return target
}

// pickVariant chooses the variant viewer id plays: "round-robin" spreads
// viewers over the variants in playlist order, "lowest" takes the lowest
// BANDWIDTH, and any other value names a rendition.
func pickVariant(m *bench.MasterPlaylist, pick string, id int) (bench.Variant, error) {
	switch pick {
	case "", PickRoundRobin:
		return m.Variants[id%len(m.Variants)], nil
	case PickLowest:
		low := m.Variants[0]
		for _, v := range m.Variants[1:] {
			if v.Bandwidth < low.Bandwidth {
				low = v
			}
		}
		return low, nil
	}
	for _, v := range m.Variants {
		if v.Name == pick {
			return v, nil
		}
	}
	return bench.Variant{}, fmt.Errorf("%w: no rendition %q in the multivariant playlist", bench.ErrPlaylist, pick)
}

// resolve resolves a playlist's reference against the playlist's URL.
func resolve(base *url.URL, ref string) *url.URL {
	u, err := url.Parse(ref)
	if err != nil {
		return base
	}
	return base.ResolveReference(u)
}
