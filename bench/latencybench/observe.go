package latencybench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/livegrid/livegrid/bench"
	"github.com/livegrid/livegrid/internal/cmaf"
	"github.com/livegrid/livegrid/internal/flv"
)

// observer watches one protocol at one location and turns what arrives
// into samples. Its goroutine is the only writer of its fields until
// Run reads them after the observers stop, except what sits behind mu:
// the progress display reads counts while it runs.
type observer struct {
	protocol, location string
	url                string // FLV stream, HLS multivariant playlist or MPD

	mu        sync.Mutex
	rendition string
	samples   []Sample
	unmatched int // frames or segments whose time matched no sent frame
	cached    int // FLV keyframes sent before the request: the GOP cache
	errors    int
	lastErr   string
	complete  bool // saw media at or past the measured window's end
	cal       calibrator
}

func (o *observer) fail(err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.errors++
	o.lastErr = err.Error()
}

func (o *observer) count() (int, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.samples), o.complete
}

// watcher holds what every observer shares.
type watcher struct {
	client    *http.Client
	marks     *marks
	now       func() time.Time
	poll      time.Duration
	tolMS     float64 // half a frame: timestamps this close are the same frame
	cutoffMS  int64   // media at or past this is outside the measured window
	rendition string
	timeout   time.Duration // one playlist or segment request
}

// frame records the frame received at recv with FLV timestamp dts.
func (w *watcher) flvKeyframe(o *observer, dts uint32, reqStart, recv time.Time) {
	f, ok := w.marks.dts(dts)
	o.mu.Lock()
	defer o.mu.Unlock()
	switch {
	case !ok:
		o.unmatched++
	case f.Sent.Before(reqStart):
		o.cached++ // sent before we asked: served from the GOP cache
	case f.PTS >= w.cutoffMS:
		o.complete = true
	default:
		o.samples = append(o.samples, Sample{Protocol: o.protocol, Location: o.location, Seq: -1,
			MediaTimeS: float64(f.PTS) / 1000, SentAt: f.Sent, AvailableS: recv.Sub(f.Sent).Seconds(), LatencyS: recv.Sub(f.Sent).Seconds()})
	}
}

// segment records media segment seq whose first frame is at ms on the
// server's timeline, first listed at listed and downloaded whole at done.
func (w *watcher) segment(o *observer, seq int64, ms float64, size int, listed, done time.Time) {
	first, haveFirst := w.marks.firstKey()
	o.mu.Lock()
	defer o.mu.Unlock()
	o.cal.observe(seq, ms, first, haveFirst, w.tolMS)
	f, ok := w.marks.nearestPTS(ms-o.cal.offsetMS, w.tolMS)
	switch {
	case !ok:
		o.unmatched++
	case f.PTS >= w.cutoffMS:
		o.complete = true
	default:
		o.samples = append(o.samples, Sample{Protocol: o.protocol, Location: o.location, Seq: seq, Bytes: size,
			MediaTimeS: float64(f.PTS) / 1000, SentAt: f.Sent, AvailableS: listed.Sub(f.Sent).Seconds(), LatencyS: done.Sub(f.Sent).Seconds()})
	}
}

// watchFLV reads the HTTP-FLV stream, reconnecting until the stream
// exists, and samples every video keyframe.
func (w *watcher) watchFLV(ctx context.Context, o *observer) {
	for ctx.Err() == nil {
		ended, err := w.readFLV(ctx, o)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			var se statusError
			if !errors.As(err, &se) || se.code != http.StatusNotFound {
				o.fail(err) // a 404 only means the stream is not up yet
			}
		}
		if ended {
			if _, complete := o.count(); complete {
				return
			}
		}
		if sleep(ctx, w.poll) != nil {
			return
		}
	}
}

func (w *watcher) readFLV(ctx context.Context, o *observer) (ended bool, err error) {
	start := w.now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, o.url, nil)
	if err != nil {
		return false, err
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, statusError{resp.StatusCode}
	}
	fr := flv.NewReader(bufio.NewReaderSize(resp.Body, 64<<10))
	for {
		t, err := fr.ReadTag()
		if errors.Is(err, flv.ErrUnsupported) {
			continue
		}
		if errors.Is(err, io.EOF) {
			return true, nil
		}
		if err != nil {
			return true, err
		}
		if t.Type != flv.TagVideo {
			continue
		}
		recv := w.now()
		if vi, err := flv.ParseVideo(t.Data); err == nil && vi.Keyframe {
			w.flvKeyframe(o, t.Timestamp, start, recv)
			if _, complete := o.count(); complete {
				return true, nil
			}
		}
	}
}

// watchHLS polls the rendition's media playlist every poll interval and
// downloads each segment as soon as it is listed.
func (w *watcher) watchHLS(ctx context.Context, o *observer) {
	master, err := url.Parse(o.url)
	if err != nil {
		o.fail(err)
		return
	}
	var media *url.URL
	for media == nil {
		body, err := w.get(ctx, o.url)
		if err == nil {
			var m *bench.MasterPlaylist
			if m, err = bench.ParseMasterPlaylist(body); err == nil {
				var v bench.Variant
				if v, err = pickVariant(m, w.rendition); err == nil {
					media = resolve(master, v.URI)
					o.mu.Lock()
					o.rendition = v.Name
					o.mu.Unlock()
				}
			}
		}
		if err != nil && !isNotFound(err) {
			o.fail(err)
		}
		if media == nil && sleep(ctx, w.poll) != nil {
			return
		}
	}
	seen := map[uint64]bool{}
	var timescale uint32
	for {
		body, err := w.get(ctx, media.String())
		listed := w.now()
		var p *bench.MediaPlaylist
		if err == nil {
			p, err = bench.ParseMediaPlaylist(body)
		}
		if err != nil && !isNotFound(err) && ctx.Err() == nil {
			o.fail(err)
		}
		if p != nil {
			for _, s := range p.Segments {
				if seen[s.Seq] {
					continue
				}
				seen[s.Seq] = true
				if timescale == 0 && s.Map != "" {
					if timescale, err = w.timescale(ctx, resolve(media, s.Map).String()); err != nil {
						o.fail(err)
						seen[s.Seq] = false // try again on the next poll
						break
					}
				}
				if err := w.fetchSegment(ctx, o, resolve(media, s.URI).String(), int64(s.Seq), timescale, listed); err != nil {
					o.fail(err)
				}
			}
			if p.Ended {
				return
			}
		}
		if _, complete := o.count(); complete || sleep(ctx, w.poll) != nil {
			return
		}
	}
}

// watchDASH polls the MPD every poll interval and downloads each segment
// of the rendition's SegmentTimeline as soon as it is listed.
func (w *watcher) watchDASH(ctx context.Context, o *observer) {
	mpdURL, err := url.Parse(o.url)
	if err != nil {
		o.fail(err)
		return
	}
	seen := map[uint64]bool{}
	var timescale uint32
	for {
		body, err := w.get(ctx, o.url)
		listed := w.now()
		var reps []DashRepresentation
		if err == nil {
			reps, err = ParseMPD(body)
		}
		if err != nil && !isNotFound(err) && ctx.Err() == nil {
			o.fail(err)
		}
		if rep, ok := pickRepresentation(reps, w.rendition); ok {
			o.mu.Lock()
			o.rendition = rep.ID
			o.mu.Unlock()
			base := resolve(mpdURL, rep.BaseURL)
			if timescale == 0 {
				if init, err := ExpandTemplate(rep.Initialization, rep.ID, 0, 0, rep.Bandwidth); err != nil {
					o.fail(err)
				} else if timescale, err = w.timescale(ctx, resolve(base, init).String()); err != nil {
					o.fail(err)
				}
			}
			for _, s := range rep.Segments {
				if timescale == 0 || seen[s.Number] {
					continue
				}
				seen[s.Number] = true
				media, err := ExpandTemplate(rep.Media, rep.ID, s.Number, s.Time, rep.Bandwidth)
				if err != nil {
					o.fail(err)
					continue
				}
				if err := w.fetchSegment(ctx, o, resolve(base, media).String(), int64(s.Number), timescale, listed); err != nil {
					o.fail(err)
				}
			}
		}
		if _, complete := o.count(); complete || sleep(ctx, w.poll) != nil {
			return
		}
	}
}

// fetchSegment downloads a media segment and samples it by its tfdt.
func (w *watcher) fetchSegment(ctx context.Context, o *observer, u string, seq int64, timescale uint32, listed time.Time) error {
	body, err := w.get(ctx, u)
	if err != nil {
		return err
	}
	done := w.now()
	seg, err := cmaf.ParseMediaSegment(body)
	if err != nil {
		return fmt.Errorf("segment %s: %w", u, err)
	}
	ms := float64(seg.BaseDecodeTime) * 1000 / float64(timescale)
	w.segment(o, seq, ms, len(body), listed, done)
	return nil
}

// timescale reads an init segment's media timescale.
func (w *watcher) timescale(ctx context.Context, u string) (uint32, error) {
	body, err := w.get(ctx, u)
	if err != nil {
		return 0, err
	}
	init, err := cmaf.ParseInit(body)
	if err != nil {
		return 0, fmt.Errorf("init segment %s: %w", u, err)
	}
	if init.Timescale == 0 {
		return 0, fmt.Errorf("init segment %s: timescale 0", u)
	}
	return init.Timescale, nil
}

// maxBody bounds one playlist or segment.
const maxBody = 128 << 20

func (w *watcher) get(ctx context.Context, u string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil, statusError{resp.StatusCode}
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxBody {
		return nil, fmt.Errorf("%s: over %d bytes", u, maxBody)
	}
	return b, nil
}

// statusError is a response other than 200.
type statusError struct{ code int }

func (e statusError) Error() string { return fmt.Sprintf("HTTP %d", e.code) }

// isNotFound reports a 404: before the first segment, the stream's
// playlists do not exist yet.
func isNotFound(err error) bool {
	var se statusError
	return errors.As(err, &se) && se.code == http.StatusNotFound
}

// pickVariant returns the named variant, or the first.
func pickVariant(m *bench.MasterPlaylist, name string) (bench.Variant, error) {
	if name == "" {
		return m.Variants[0], nil
	}
	for _, v := range m.Variants {
		if v.Name == name {
			return v, nil
		}
	}
	return bench.Variant{}, fmt.Errorf("%w: no rendition %q", bench.ErrPlaylist, name)
}

// pickRepresentation returns the named representation, or the first
// video one.
func pickRepresentation(reps []DashRepresentation, name string) (DashRepresentation, bool) {
	for _, r := range reps {
		if (name != "" && r.ID == name) || (name == "" && r.ContentType == "video") {
			return r, true
		}
	}
	return DashRepresentation{}, false
}

func resolve(base *url.URL, ref string) *url.URL {
	u, err := url.Parse(ref)
	if err != nil {
		return base
	}
	return base.ResolveReference(u)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
