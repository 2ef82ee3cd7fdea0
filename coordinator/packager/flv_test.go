package packager

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/livegrid/livegrid/internal/cmafflv"
	"github.com/livegrid/livegrid/internal/flv"
	"github.com/livegrid/livegrid/internal/store/fsstore"
)

// flvClient reads an HTTP-FLV response in its own goroutine: the tags
// arrive on tags, the raw bytes pile up for ffprobe, and err says how
// the body ended once tags is closed.
type flvClient struct {
	resp *http.Response
	tags chan flv.Tag
	raw  bytes.Buffer // written by the goroutine until tags is closed
	err  error
}

func getFLV(t *testing.T, ctx context.Context, url string) *flvClient {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	c := &flvClient{resp: resp, tags: make(chan flv.Tag, 4096)}
	go func() {
		defer close(c.tags)
		r := flv.NewReader(bufio.NewReader(io.TeeReader(resp.Body, &c.raw)))
		if _, c.err = r.Header(); c.err != nil {
			return
		}
		for {
			tag, err := r.ReadTag()
			if err != nil {
				c.err = err
				return
			}
			c.tags <- tag
		}
	}()
	return c
}

// next returns the next tag, or ok false when the body ended; it fails
// the test when none comes within a minute (a loaded machine is slow, a
// stuck stream is stuck).
func (c *flvClient) next(t *testing.T) (flv.Tag, bool) {
	t.Helper()
	select {
	case tag, ok := <-c.tags:
		return tag, ok
	case <-time.After(time.Minute):
		t.Fatal("no FLV tag for a minute")
	}
	return flv.Tag{}, false
}

// flvSummary is what the origin tests check of an FLV byte stream.
type flvSummary struct {
	script, videoSeq, audioSeq, video, audio int
	firstVideoKey                            bool
	lastVideoTS                              uint32
}

// add checks one tag against the rules every origin FLV follows
// (onMetaData first, sequence headers before frames, decode times that
// never go back) and counts it.
func (s *flvSummary) add(t *testing.T, tag flv.Tag, last *uint32) {
	t.Helper()
	if tag.Timestamp < *last {
		t.Fatalf("%s tag at %d ms after one at %d ms", tag.Type, tag.Timestamp, *last)
	}
	*last = tag.Timestamp
	first := s.script+s.videoSeq+s.audioSeq+s.video+s.audio == 0
	switch tag.Type {
	case flv.TagScript:
		if _, err := flv.ParseMetadata(tag.Data); err != nil {
			t.Fatal(err)
		}
		s.script++
	case flv.TagVideo:
		v, err := flv.ParseVideo(tag.Data)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case v.SequenceHeader:
			s.videoSeq++
		case s.videoSeq == 0:
			t.Fatal("video frame before the sequence header")
		default:
			if s.video == 0 {
				s.firstVideoKey = v.Keyframe
			}
			s.video++
			s.lastVideoTS = tag.Timestamp
		}
	case flv.TagAudio:
		a, err := flv.ParseAudio(tag.Data)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case a.SequenceHeader:
			s.audioSeq++
		case s.audioSeq == 0:
			t.Fatal("audio frame before the sequence header")
		default:
			s.audio++
		}
	}
	if first && tag.Type != flv.TagScript {
		t.Fatalf("first tag is %s, not onMetaData", tag.Type)
	}
}

// TestFFprobeOriginFLV publishes a real two-rung ladder with AAC into a
// packager and a folder store, and reads /live/test/120p.flv over HTTP
// while it is live: the response starts at the newest segment, a segment
// published while connected arrives (with a new init segment, so new
// sequence headers), and the end of the presentation closes the
// response. ffprobe decodes the captured bytes: every frame of the 120p
// segments sent and of their audio, at 160x120, at the CMAF presentation
// times.
func TestFFprobeOriginFLV(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ffmpeg")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	clip := makeClip(t, ctx)
	st, err := fsstore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	clock := newFakeClock(time.Now())
	p, err := New(Config{Store: st, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	origin := &Origin{Packager: p, Store: st}
	srv := httptest.NewServer(origin)
	defer srv.Close()
	defer origin.Close()

	if err := p.Start("test", "s1", StartOptions{}); err != nil {
		t.Fatal(err)
	}
	for k := range 2 {
		if err := p.Publish(clipResult(clip, "test", "s1", k)); err != nil {
			t.Fatal(err)
		}
	}
	c := getFLV(t, ctx, srv.URL+"/live/test/120p.flv")
	if h := c.resp.Header; h.Get("Content-Type") != "video/x-flv" || h.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("headers %v", h)
	}

	// Segment 1, the newest, comes at once; its first frame is a keyframe.
	var sum flvSummary
	var last uint32
	seg2 := uint32(clip[1].segs[2].start * 1000 / uint64(clip[1].info.Timescale))
	for sum.video < clip[1].segs[1].frames/2 {
		tag, ok := c.next(t)
		if !ok {
			t.Fatalf("body ended: %v", c.err)
		}
		sum.add(t, tag, &last)
	}
	if !sum.firstVideoKey || sum.script != 1 || sum.videoSeq != 1 || sum.audioSeq != 1 {
		t.Fatalf("start of the stream: %+v", sum)
	}
	if seg1 := uint32(clip[1].segs[1].start * 1000 / uint64(clip[1].info.Timescale)); last+100 < seg1 {
		t.Fatalf("first tags at %d ms, segment 1 starts at %d ms", last, seg1)
	}

	// Segment 2, published now with a new 120p init segment (an encoder
	// change), arrives after new sequence headers.
	r := clipResult(clip, "test", "s1", 2)
	for i := range r.Renditions {
		if o := &r.Renditions[i]; o.Name == "120p" {
			o.Init = append(slices.Clone(o.Init), 0, 0, 0, 8, 'f', 'r', 'e', 'e')
		}
	}
	if err := p.Publish(r); err != nil {
		t.Fatal(err)
	}
	for sum.lastVideoTS < seg2 {
		tag, ok := c.next(t)
		if !ok {
			t.Fatalf("body ended before segment 2: %v", c.err)
		}
		sum.add(t, tag, &last)
	}

	// The end of the presentation ends the response.
	if err := p.End("test", "s1", 3); err != nil {
		t.Fatal(err)
	}
	clock.Advance(DefaultGrace)
	for {
		tag, ok := c.next(t)
		if !ok {
			break
		}
		sum.add(t, tag, &last)
	}
	if !errors.Is(c.err, io.EOF) {
		t.Fatalf("body ended with %v", c.err)
	}
	wantV := clip[1].segs[1].frames + clip[1].segs[2].frames
	wantA := clip[2].segs[1].frames + clip[2].segs[2].frames
	if sum.video != wantV || sum.audio != wantA || sum.videoSeq != 2 || sum.script != 2 {
		t.Errorf("got %+v, want %d video and %d audio frames after 2 sequence headers", sum, wantV, wantA)
	}

	file := filepath.Join(t.TempDir(), "120p.flv")
	if err := os.WriteFile(file, c.raw.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	frames := probeFLVFrames(ctx, t, file, "v:0")
	if len(frames) != wantV || frames[0].Width != 160 || frames[0].Height != 120 {
		t.Errorf("ffprobe: %d video frames (first %+v), want %d at 160x120", len(frames), frames[0], wantV)
	}
	if got, want := sortedPTS(frames), clipPTS(t, clip[1], 1, 2); !slices.Equal(got, want) {
		t.Errorf("ffprobe video pts\n got %v\nwant %v", got, want)
	}
	if got, want := sortedPTS(probeFLVFrames(ctx, t, file, "a:0")), clipPTS(t, clip[2], 1, 2); !slices.Equal(got, want) {
		t.Errorf("ffprobe audio pts\n got %v\nwant %v", got, want)
	}
}

type flvFrame struct {
	PTS    int64 `json:"pts"`
	Width  int   `json:"width"`
	Height int   `json:"height"`
}

// probeFLVFrames has ffprobe decode one stream of an FLV file; any
// error it reports fails the test.
func probeFLVFrames(ctx context.Context, t *testing.T, path, stream string) []flvFrame {
	t.Helper()
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(cctx, "ffprobe", "-v", "error", "-select_streams", stream,
		"-show_entries", "frame=pts,width,height", "-of", "json", path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("ffprobe %s %s: %v\n%s", path, stream, err, stderr.Bytes())
	}
	var doc struct {
		Frames []flvFrame `json:"frames"`
	}
	if err := json.Unmarshal(out, &doc); err != nil || len(doc.Frames) == 0 {
		t.Fatalf("ffprobe %s %s: %v\n%s", path, stream, err, out)
	}
	return doc.Frames
}

func sortedPTS(fs []flvFrame) []int64 {
	pts := make([]int64, len(fs))
	for i, f := range fs {
		pts[i] = f.PTS
	}
	slices.Sort(pts)
	return pts
}

// clipPTS lists, sorted, the presentation times in ms (rounded down) of
// the samples of some segments of a clip rendition, as the CMAF says.
func clipPTS(t *testing.T, cr clipRendition, segs ...int) []int64 {
	t.Helper()
	tr, err := cmafflv.ParseInit(cr.info.Init)
	if err != nil {
		t.Fatal(err)
	}
	var pts []int64
	for _, k := range segs {
		ss, err := tr.Samples(cr.segs[k].data)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range ss {
			pts = append(pts, (int64(s.DTS)+int64(s.CTSOffset))*1000/int64(tr.Timescale))
		}
	}
	slices.Sort(pts)
	return pts
}

// TestOriginFLVRoutes: unknown streams and renditions are 404, HEAD
// answers the headers of a live rendition without a body, OPTIONS is a
// CORS preflight, and a bad name is 400.
func TestOriginFLVRoutes(t *testing.T) {
	h := newHarness(t, nil)
	h.start("cam", "s1")
	h.publish(result("cam", "s1", 0, 0, 1))
	for _, tt := range []struct {
		method, path string
		code         int
	}{
		{http.MethodGet, "/live/nope/240p.flv", http.StatusNotFound},
		{http.MethodGet, "/live/cam/1080p.flv", http.StatusNotFound},
		{http.MethodGet, "/live/cam/.hidden.flv", http.StatusBadRequest},
		{http.MethodHead, "/live/cam/240p.flv", http.StatusOK},
		{http.MethodHead, "/live/cam/aac.flv", http.StatusOK},
		{http.MethodOptions, "/live/cam/240p.flv", http.StatusNoContent},
		{http.MethodPost, "/live/cam/240p.flv", http.StatusMethodNotAllowed},
	} {
		w := h.get(tt.method, tt.path)
		if w.Code != tt.code || w.Header().Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("%s %s: %d %v, want %d", tt.method, tt.path, w.Code, w.Header(), tt.code)
		}
		if tt.method == http.MethodHead && (w.Header().Get("Content-Type") != "video/x-flv" || w.Body.Len() != 0) {
			t.Errorf("HEAD %s: %v, %d body bytes", tt.path, w.Header(), w.Body.Len())
		}
	}
}

// TestOriginFLVViewersEnd: a viewer who leaves ends its response, and
// Origin.Close ends those still watching a live stream and refuses new
// ones; goleak (TestMain) proves no goroutine is left behind.
func TestOriginFLVViewersEnd(t *testing.T) {
	h := newHarness(t, nil)
	h.start("cam", "s1")
	h.publish(result("cam", "s1", 0, 0, 1))
	srv := httptest.NewServer(h.origin)
	defer srv.Close()

	leaving, leave := context.WithCancel(t.Context())
	gone := getFLV(t, leaving, srv.URL+"/live/cam/240p.flv")
	staying := getFLV(t, t.Context(), srv.URL+"/live/cam/240p.flv")
	leave()
	for _, ok := gone.next(t); ok; _, ok = gone.next(t) {
	}
	h.origin.Close()
	for _, ok := staying.next(t); ok; _, ok = staying.next(t) {
	}
	if !errors.Is(staying.err, io.EOF) || !bytes.HasPrefix(staying.raw.Bytes(), []byte("FLV")) {
		t.Errorf("after Close: %v, %q", staying.err, staying.raw.Bytes())
	}
	if w := h.get(http.MethodGet, "/live/cam/240p.flv"); w.Code != http.StatusServiceUnavailable {
		t.Errorf("GET after Close: %d", w.Code)
	}
}
