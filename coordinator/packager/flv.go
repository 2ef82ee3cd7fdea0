package packager

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/livegrid/livegrid/internal/cmafflv"
	"github.com/livegrid/livegrid/internal/flv"
	"github.com/livegrid/livegrid/internal/manifest"
)

// DefaultFLVWriteTimeout bounds one write to an HTTP-FLV viewer.
const DefaultFLVWriteTimeout = 10 * time.Second

// errOriginClosed ends HTTP-FLV responses when the Origin closes.
var errOriginClosed = errors.New("origin closed")

// Close ends the HTTP-FLV responses in progress, which otherwise last as
// long as their stream, and answers later ones 503; other routes keep
// working. http.Server.Shutdown waits for responses to finish, so call
// Close first (or register it with RegisterOnShutdown).
func (o *Origin) Close() {
	done := o.done()
	o.mu.Lock()
	defer o.mu.Unlock()
	select {
	case <-done:
	default:
		close(done)
	}
}

// done is closed by Close.
func (o *Origin) done() chan struct{} {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed == nil {
		o.closed = make(chan struct{})
	}
	return o.closed
}

// serveFLV serves /live/{stream}/{rendition}.flv: a video rendition with
// the ladder's audio, or an audio rendition alone, as HTTP-FLV. It starts
// at the newest published segment (each starts with a keyframe, so
// playback starts at once), then sends each segment as the packager
// publishes it, until the presentation ends, the viewer leaves, a write
// takes longer than FLVWriteTimeout or the Origin closes.
func (o *Origin) serveFLV(w http.ResponseWriter, r *http.Request, stream, rendition string, v *view) {
	h := w.Header()
	fail := func(code int) {
		h.Set("Cache-Control", cacheError)
		http.Error(w, http.StatusText(code), code)
	}
	select {
	case <-o.done():
		fail(http.StatusServiceUnavailable)
		return
	default:
	}
	fv := &flvViewer{o: o, w: w, rc: http.NewResponseController(w), stream: stream, log: o.logger().With("stream", stream, "rendition", rendition)}
	if !fv.pick(v, rendition) || len(v.window) == 0 {
		fail(http.StatusNotFound)
		return
	}
	start := v.window[len(v.window)-1]
	ctx := r.Context()
	_, err := fv.loadInits(ctx, v, start)
	if fv.tracks[0] == nil && fv.names[0] != "" || fv.tracks[1] == nil && fv.names[0] == "" {
		fv.log.Warn("origin: http-flv: no usable init segment", "err", err)
		fail(http.StatusServiceUnavailable)
		return
	}
	if err != nil {
		// Video without its audio is still worth watching.
		fv.log.Warn("origin: http-flv: serving video without audio", "err", err)
		fv.names[1] = ""
	}
	fv.mux, err = cmafflv.NewMuxer(fv.tracks[0], fv.tracks[1], fv.meta(v))
	if err != nil {
		fv.log.Warn("origin: http-flv", "err", err)
		fail(http.StatusServiceUnavailable)
		return
	}
	h.Set("Content-Type", "video/x-flv")
	h.Set("Cache-Control", "no-cache, no-store")
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	began := time.Now()
	err = fv.run(ctx, v, start.seq)
	log := fv.log.With("tags", fv.tags, "duration", time.Since(began).Round(time.Millisecond))
	switch {
	case err == nil:
		log.Debug("http-flv viewer done: stream ended")
	case errors.Is(err, os.ErrDeadlineExceeded):
		log.Info("http-flv viewer dropped: write timed out", "timeout", fv.timeout())
	default:
		log.Debug("http-flv viewer left", "err", err)
	}
}

// flvViewer is one HTTP-FLV response; index 0 is video, 1 audio.
type flvViewer struct {
	o      *Origin
	w      http.ResponseWriter
	rc     *http.ResponseController
	fw     *flv.Writer
	mux    *cmafflv.Muxer
	stream string
	log    *slog.Logger

	names  [2]string // ladder names; "" for none
	tracks [2]*cmafflv.Track
	inits  [2]string // live init names the tracks came from
	tags   int
}

// pick chooses the renditions for a request: a video rendition and the
// ladder's first audio one, or an audio rendition alone.
func (fv *flvViewer) pick(v *view, rendition string) bool {
	i := slices.IndexFunc(v.ladder, func(e ladderEntry) bool { return e.name == rendition })
	if i < 0 {
		return false
	}
	if v.ladder[i].kind == manifest.Audio {
		fv.names[1] = rendition
		return true
	}
	fv.names[0] = rendition
	if a := slices.IndexFunc(v.ladder, func(e ladderEntry) bool { return e.kind == manifest.Audio }); a >= 0 {
		fv.names[1] = v.ladder[a].name
	}
	return true
}

// inLadder says whether the requested rendition is in a view's ladder.
func (fv *flvViewer) inLadder(v *view) bool {
	name := cmp.Or(fv.names[0], fv.names[1])
	return slices.ContainsFunc(v.ladder, func(e ladderEntry) bool { return e.name == name })
}

// meta is what onMetaData says beyond the init segments.
func (fv *flvViewer) meta(v *view) cmafflv.Meta {
	var m cmafflv.Meta
	for _, e := range v.ladder {
		switch e.name {
		case fv.names[0]:
			m.FrameRate, m.VideoBitrate = e.frameRate, e.bitrate
		case fv.names[1]:
			m.AudioBitrate = e.bitrate
		}
	}
	return m
}

// loadInits reads the init segments a window segment uses, for the
// tracks whose init differs from the current one, and returns those new
// tracks (nil for the others). A track whose init cannot be read keeps
// its old one; the error says why.
func (fv *flvViewer) loadInits(ctx context.Context, v *view, ws windowSeg) ([2]*cmafflv.Track, error) {
	var out [2]*cmafflv.Track
	var errs []error
	for k, name := range fv.names {
		if name == "" {
			continue
		}
		i := slices.IndexFunc(v.ladder, func(e ladderEntry) bool { return e.name == name })
		if i < 0 || i >= len(ws.inits) {
			errs = append(errs, fmt.Errorf("rendition %q left the ladder", name))
			continue
		}
		live := ws.inits[i]
		if live == fv.inits[k] {
			continue
		}
		key, ok := v.inits[name][live]
		if !ok {
			errs = append(errs, fmt.Errorf("rendition %q: no init %q", name, live))
			continue
		}
		data, err := fv.o.Store.Get(ctx, key)
		if err != nil {
			errs = append(errs, fmt.Errorf("rendition %q: %w", name, err))
			continue
		}
		tr, err := cmafflv.ParseInit(data)
		if err == nil && tr.Video != (k == 0) {
			err = fmt.Errorf("init %s is not %s", key, v.kinds[name])
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("rendition %q: %w", name, err))
			continue
		}
		out[k] = tr
		fv.tracks[k], fv.inits[k] = tr, live
	}
	return out, errors.Join(errs...)
}

// run writes the FLV header and the segments from seq on, then each new
// one, until the presentation ends (nil) or the viewer cannot be written.
func (fv *flvViewer) run(ctx context.Context, v *view, seq uint64) error {
	fv.w.WriteHeader(http.StatusOK)
	fv.deadline()
	var err error
	if fv.fw, err = flv.NewWriter(fv.w, fv.mux.Header()); err != nil {
		return err
	}
	if err := fv.rc.Flush(); err != nil {
		return err
	}
	for {
		for _, ws := range v.window {
			if ws.seq < seq {
				continue
			}
			if err := fv.segment(ctx, v, ws); err != nil {
				return err
			}
			seq = ws.seq + 1
		}
		if v.ended {
			return fv.write(fv.mux.Flush())
		}
		select {
		case <-v.next:
		case <-ctx.Done():
			return ctx.Err()
		case <-fv.o.done():
			return errOriginClosed
		}
		// A new presentation may have another ladder.
		if v = fv.o.Packager.view(fv.stream); v == nil || !fv.inLadder(v) {
			return fv.write(fv.mux.Flush())
		}
	}
}

// segment sends one window segment. Store and parse failures skip the
// segment (or its audio) with a warning; only write errors end the
// response.
func (fv *flvViewer) segment(ctx context.Context, v *view, ws windowSeg) error {
	tracks, err := fv.loadInits(ctx, v, ws)
	if err != nil {
		fv.log.Warn("origin: http-flv: init segment", "seq", ws.seq, "err", err)
	}
	fv.mux.SetTracks(tracks[0], tracks[1])
	var samples [2][]cmafflv.Sample
	for k, name := range fv.names {
		if name == "" || fv.inits[k] != liveInitOf(v, name, ws) {
			continue // no track, or its init did not load
		}
		key, ok := v.segmentKey(name, ws.seq)
		if !ok {
			continue
		}
		data, err := fv.o.Store.Get(ctx, key)
		if err == nil {
			samples[k], err = fv.tracks[k].Samples(data)
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			fv.log.Warn("origin: http-flv: skipping a segment", "key", key, "err", err)
		}
	}
	return fv.write(fv.mux.Write(samples[0], samples[1]))
}

// liveInitOf is the live init name a window segment uses for a rendition.
func liveInitOf(v *view, name string, ws windowSeg) string {
	i := slices.IndexFunc(v.ladder, func(e ladderEntry) bool { return e.name == name })
	if i < 0 || i >= len(ws.inits) {
		return ""
	}
	return ws.inits[i]
}

// write sends tags, each under the write deadline, and flushes them.
func (fv *flvViewer) write(tags []flv.Tag) error {
	if len(tags) == 0 {
		return nil
	}
	for _, t := range tags {
		fv.deadline()
		if err := fv.fw.WriteTag(t); err != nil {
			return err
		}
		fv.tags++
	}
	fv.deadline()
	return fv.rc.Flush()
}

func (fv *flvViewer) deadline() {
	// I/O deadlines are wall-clock by nature; the packager's clock is
	// not. Not every ResponseWriter supports them (httptest's does not).
	_ = fv.rc.SetWriteDeadline(time.Now().Add(fv.timeout()))
}

func (fv *flvViewer) timeout() time.Duration {
	if fv.o.FLVWriteTimeout > 0 {
		return fv.o.FLVWriteTimeout
	}
	return DefaultFLVWriteTimeout
}

func (o *Origin) logger() *slog.Logger {
	if o.Logger != nil {
		return o.Logger
	}
	return slog.New(slog.DiscardHandler)
}
