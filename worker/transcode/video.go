//go:build cgo

package transcode

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/asticode/go-astiav"
	"github.com/livegrid/livegrid/internal/cmaf"
	"github.com/livegrid/livegrid/profiles"
)

// chunk is a GOP-aligned run of source video packets: it starts at a
// keyframe and can be decoded on its own.
type chunk struct {
	par     *astiav.CodecParameters // not owned
	tb      astiav.Rational         // packet time base
	packets []*astiav.Packet        // owned
	start   int64                   // first pts, 90 kHz
	end     int64                   // pts of the next chunk's first frame, 90 kHz; -1 if unknown
}

func (c *chunk) free() {
	for _, p := range c.packets {
		p.Free()
	}
	c.packets = nil
}

// videoPlan is the ladder fitted to a source.
type videoPlan struct {
	outputs   []profiles.Output
	encoders  []Candidate // per output
	srcFPS    astiav.Rational
	gop       time.Duration
	segDur    time.Duration
	threads   []int // per output; 0 lets the encoder decide
	faults    *Faults
	frameDur  int64 // nominal source frame duration, 90 kHz
	initCache *initCache
	gpu       bool // frames stay in CUDA memory (see gpu.go)
	noGPU     bool // the GPU path failed: feed NVENC from system memory
	// live: the plan of a live session (see live.go): the pipeline ends
	// every source segment with a mark instead of closing.
	live bool
	// drainLive keeps the ladder's encoder settings in a live session, so
	// every segment end drains and reopens the encoders (measured against
	// low-delay encoders in BenchmarkLiveSessionVsSegment).
	drainLive bool
}

// sample is one encoded access unit of a rendition, in decode order.
type sample struct {
	pts, dts int64 // 90 kHz
	key      bool
	data     []byte // length-prefixed NAL units
}

// segment is one output media segment of a rendition before serialisation.
type segment struct {
	start    uint64 // tfdt, 90 kHz
	duration uint64
	samples  []cmaf.Sample
	bytes    int
	mark     bool // live: no media; the rung is done with the source segment
}

// vframe travels from the decoder to the rungs.
type vframe struct {
	f   *astiav.Frame
	pts int64 // 90 kHz
	cut bool  // first frame of an output segment: force an IDR
	// mark (live) carries no frame: the source segment is over, and end
	// is where the next one starts (90 kHz; -1 unknown).
	mark bool
	end  int64
}

// cutTargets splits a chunk into output segments of about segDur each, equal
// in length, so a broadcaster's long GOP does not make long segments.
func cutTargets(start, end int64, segDur time.Duration) []int64 {
	d := end - start
	target := segDur.Seconds() * videoTimescale
	n := int(math.Round(float64(d) / target))
	if n <= 1 {
		return nil
	}
	out := make([]int64, 0, n-1)
	for k := 1; k < n; k++ {
		out = append(out, start+int64(k)*d/int64(n))
	}
	return out
}

func rescale(ts int64, tb astiav.Rational) int64 {
	return astiav.RescaleQ(ts, tb, astiav.NewRational(1, videoTimescale))
}

func openDecoder(par *astiav.CodecParameters) (*astiav.CodecContext, error) {
	codec := astiav.FindDecoder(par.CodecID())
	if codec == nil {
		return nil, fmt.Errorf("open decoder: %w: %s", ErrUnsupportedCodec, par.CodecID())
	}
	cc := astiav.AllocCodecContext(codec)
	if cc == nil {
		return nil, errors.New("open decoder: allocating codec context")
	}
	if err := par.ToCodecContext(cc); err != nil {
		cc.Free()
		return nil, fmt.Errorf("open decoder: %w", err)
	}
	cc.SetThreadCount(0)
	if err := cc.Open(codec, nil); err != nil {
		cc.Free()
		return nil, fmt.Errorf("open decoder %s: %w: %w", codec.Name(), ErrUnsupportedCodec, err)
	}
	return cc, nil
}

// scale returns f itself when it already fits the encoder, else a new frame.
func (r *rungWorker) scale(f *astiav.Frame) (*astiav.Frame, error) {
	if r.plan.gpu {
		return r.scaleCUDA(f)
	}
	w, h, pf := r.out.Width, r.out.Height, r.enc.pixFmt
	if f.Width() == w && f.Height() == h && f.PixelFormat() == pf {
		return f, nil
	}
	key := [3]int{f.Width(), f.Height(), int(f.PixelFormat())}
	if r.sws == nil || key != r.swsKey {
		if r.sws != nil {
			r.sws.Free()
		}
		var err error
		r.sws, err = astiav.CreateSoftwareScaleContext(f.Width(), f.Height(), f.PixelFormat(), w, h, pf,
			astiav.NewSoftwareScaleContextFlags(astiav.SoftwareScaleContextFlagBicubic))
		if err != nil {
			r.sws = nil
			return f, fmt.Errorf("scale %dx%d -> %dx%d: %w", f.Width(), f.Height(), w, h, err)
		}
		r.swsKey = key
	}
	if r.pool == nil {
		r.pool = &framePool{w: w, h: h, pf: pf}
	}
	dst, err := r.pool.get()
	if err != nil {
		return f, err
	}
	if err := r.sws.ScaleFrame(f, dst); err != nil {
		r.release(dst)
		return f, fmt.Errorf("scale %dx%d -> %dx%d: %w", f.Width(), f.Height(), w, h, err)
	}
	return dst, nil
}

// release gives back a picture from scale: pooled ones stay for reuse.
func (r *rungWorker) release(f *astiav.Frame) {
	if r.pool == nil || !r.pool.owns(f) {
		f.Free()
	}
}

// initCache keeps one init segment per distinct encoder output, so segments
// do not run the mp4 muxer again for identical headers.
type initCache struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (c *initCache) get(e *encoder) ([]byte, error) {
	par := astiav.AllocCodecParameters()
	defer par.Free()
	if err := e.cc.ToCodecParameters(par); err != nil {
		return nil, fmt.Errorf("init segment: %w", err)
	}
	key := fmt.Sprintf("%s/%dx%d/%x", e.cand.Encoder, par.Width(), par.Height(), par.ExtraData())
	c.mu.Lock()
	b, ok := c.m[key]
	c.mu.Unlock()
	if ok {
		return b, nil
	}
	b, err := buildInit(par, videoTimescale)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string][]byte{}
	}
	c.m[key] = b
	c.mu.Unlock()
	return b, nil
}

// rungThreads sizes each rung's encoder threads. With threads > 0 every rung
// gets that many. Otherwise the machine's thread budget (what x264 would
// take for one encoder: 1.5 per core) is split by each rung's share of the
// pixels: the rungs already run in parallel, so giving every encoder the
// whole budget only adds frame-thread overhead.
func rungThreads(outs []profiles.Output, threads, cpus int) []int {
	t := make([]int, len(outs))
	if threads > 0 {
		for i := range t {
			t[i] = threads
		}
		return t
	}
	total := 0
	for _, o := range outs {
		total += o.Width * o.Height
	}
	budget := float64(cpus) * 1.5
	for i, o := range outs {
		t[i] = max(1, int(math.Round(budget*float64(o.Width*o.Height)/float64(total))))
	}
	return t
}

// scaleCUDA scales a CUDA frame with scale_cuda; f itself when it fits.
func (r *rungWorker) scaleCUDA(f *astiav.Frame) (*astiav.Frame, error) {
	w, h := r.out.Width, r.out.Height
	if f.Width() == w && f.Height() == h {
		return f, nil
	}
	key := [3]int{f.Width(), f.Height(), int(f.PixelFormat())}
	if r.cuda == nil || key != r.swsKey {
		if r.cuda != nil {
			r.cuda.free()
		}
		var err error
		if r.cuda, err = newCUDAScaler(f, w, h); err != nil {
			r.cuda = nil
			return f, &encoderError{kind: r.cand.Kind, encoder: "scale_cuda", stage: "open", err: err}
		}
		r.swsKey = key
	}
	return r.cuda.scale(f)
}
