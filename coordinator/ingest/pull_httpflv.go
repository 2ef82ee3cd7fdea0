package ingest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/livegrid/livegrid/internal/flv"
)

// maxPlaylistBytes bounds a playlist the puller reads.
const maxPlaylistBytes = 4 << 20

// errIdle ends a source that sent nothing for the idle timeout.
var errIdle = errors.New("source sent nothing for the idle timeout")

// openHTTP opens an http(s) source: an .m3u8 path is HLS; anything else
// is fetched and recognized by its content type or first bytes, an FLV
// stream (HTTP-FLV) or a playlist.
func (p *Puller) openHTTP(ctx context.Context, pl *pull) (tagSource, error) {
	if strings.HasSuffix(strings.ToLower(pl.url.Path), ".m3u8") {
		return p.openHLS(ctx, pl, pl.url, nil)
	}
	rctx, cancel := context.WithCancelCause(ctx)
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, pl.url.String(), nil)
	if err != nil {
		cancel(nil)
		return nil, fmt.Errorf("request: %w", err)
	}
	req.Header.Set("User-Agent", userAgent)
	setup := time.AfterFunc(p.setupTimeout(), func() { cancel(fmt.Errorf("no response in %v", p.setupTimeout())) })
	resp, err := p.client.Do(req)
	if err != nil {
		setup.Stop()
		err = causeOf(rctx, err)
		cancel(nil)
		return nil, fmt.Errorf("GET: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		setup.Stop()
		resp.Body.Close()
		cancel(nil)
		return nil, fmt.Errorf("GET: HTTP %s", resp.Status)
	}
	body := newIdleBody(resp.Body, p.idleTimeout(), cancel)
	setup.Stop()
	br := bufio.NewReaderSize(body, 64<<10)
	head, _ := br.Peek(len("#EXTM3U"))
	if strings.Contains(strings.ToLower(resp.Header.Get("Content-Type")), "mpegurl") || bytes.HasPrefix(head, []byte("#EXTM3U")) {
		b, err := io.ReadAll(io.LimitReader(br, maxPlaylistBytes+1))
		body.Close()
		cancel(nil)
		if err != nil {
			return nil, fmt.Errorf("read playlist: %w", err)
		}
		return p.openHLS(ctx, pl, resp.Request.URL, b)
	}
	return &flvSource{body: body, r: flv.NewReader(br), ctx: rctx, cancel: cancel}, nil
}

// userAgent is what the puller sends to HTTP sources.
const userAgent = "livegrid-pull"

// causeOf prefers a context's cause to the error it made.
func causeOf(ctx context.Context, err error) error {
	if c := context.Cause(ctx); c != nil && !errors.Is(err, c) {
		return fmt.Errorf("%w (%w)", c, err)
	}
	return err
}

// flvSource reads an HTTP-FLV stream.
type flvSource struct {
	body   *idleBody
	r      *flv.Reader
	ctx    context.Context // the request's
	cancel context.CancelCauseFunc
}

// ReadTag returns the next audio, video or script tag: media with a body
// as mediaTag takes them, script data as scriptTag checks it; encrypted
// tags and other types are skipped.
func (s *flvSource) ReadTag(ctx context.Context) (flv.Tag, error) {
	for {
		t, err := s.r.ReadTag()
		switch {
		case errors.Is(err, flv.ErrUnsupported):
			continue
		case errors.Is(err, io.EOF):
			return flv.Tag{}, fmt.Errorf("%w: end of the FLV stream", errSourceEnded)
		case err != nil:
			if s.body.timedOut.Load() {
				return flv.Tag{}, fmt.Errorf("%w (%v)", errIdle, s.body.idle)
			}
			if ctx.Err() != nil {
				return flv.Tag{}, context.Cause(ctx)
			}
			return flv.Tag{}, fmt.Errorf("read FLV: %w", err)
		}
		t, err = fileTag(t)
		if errors.Is(err, errBadMessage) {
			continue
		}
		return t, err
	}
}

func (s *flvSource) Close() error {
	s.cancel(nil)
	return s.body.Close()
}

// idleBody is a response body whose reads may each wait idle at most:
// a timer, reset before every read, cancels the request.
type idleBody struct {
	rc       io.ReadCloser
	idle     time.Duration
	timer    *time.Timer
	timedOut atomic.Bool
}

func newIdleBody(rc io.ReadCloser, idle time.Duration, cancel context.CancelCauseFunc) *idleBody {
	b := &idleBody{rc: rc, idle: idle}
	b.timer = time.AfterFunc(idle, func() {
		b.timedOut.Store(true)
		cancel(errIdle)
	})
	return b
}

func (b *idleBody) Read(p []byte) (int, error) {
	b.timer.Reset(b.idle)
	return b.rc.Read(p)
}

func (b *idleBody) Close() error {
	b.timer.Stop()
	return b.rc.Close()
}

// fileTag checks a tag read from an FLV stream as RTMP ingest checks a
// publisher's messages: media tags need a body, script data must be valid
// AMF0. Other tag types are refused; errors wrap errBadMessage.
func fileTag(t flv.Tag) (flv.Tag, error) {
	t.StreamID = 0
	switch t.Type {
	case flv.TagAudio, flv.TagVideo:
		if len(t.Data) == 0 {
			return flv.Tag{}, fmt.Errorf("%w: empty %s tag", errBadMessage, t.Type)
		}
		return t, nil
	case flv.TagScript:
		return scriptTagFromBody(t.Timestamp, t.Data)
	}
	return flv.Tag{}, fmt.Errorf("%w: tag type %s", errBadMessage, t.Type)
}
