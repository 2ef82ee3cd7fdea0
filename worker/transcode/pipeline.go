//go:build cgo

package transcode

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/asticode/go-astiav"
	"github.com/livegrid/livegrid/internal/cmaf"
	"github.com/livegrid/livegrid/profiles"
)

// pipeline is one stream's warm transcode: a decoder and one goroutine per
// rung whose encoder stays open across chunks, so rate control converges and
// no encoder is reopened or drained at every segment. Chunks are fed in
// order; each rung hands finished segments out on its segs channel as soon as
// the IDR that starts the next segment leaves its encoder.
type pipeline struct {
	plan   *videoPlan
	tb     astiav.Rational
	dec    *astiav.CodecContext
	gpu    *gpuDecoder // set on the GPU path
	frame  *astiav.Frame
	rungs  []*rungWorker
	ctx    context.Context
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup

	lastPTS int64
	cutAt   []int64 // pending cut points, ascending (90 kHz)
	started bool
	closed  bool
}

// maxSliceThreads bounds a low-delay encoder's threads (slices).
const maxSliceThreads = 4

// frameQueue is how many frames may wait for a rung: enough that a rung
// whose encoder is between frame threads does not stall the decoder and
// with it every other rung.
const frameQueue = 8

// rungWorker scales and encodes one rung and feeds the rungs that cascade
// from it.
type rungWorker struct {
	idx      int
	out      profiles.Output
	cand     Candidate
	plan     *videoPlan
	in       chan vframe
	segs     chan segment
	children []*rungWorker
	err      error

	enc      *encoder
	sws      *astiav.SoftwareScaleContext
	swsKey   [3]int
	pool     *framePool
	cuda     *cudaScaler
	cuts     map[int64]bool
	cur      []sample
	frames   int
	nextKeep int64
	keptAny  bool
	init     []byte
	end      int64 // set by close: where the last segment ends, or -1

	// Live sessions feed the encoder its own steady timeline, so source
	// segments may come with gaps or out of order; srcPTS maps it back.
	srcPTS  map[int64]int64 // encoder pts -> source pts, for frames in the encoder
	nextEnc int64
	encStep int64
}

func newPipeline(ctx context.Context, par *astiav.CodecParameters, tb astiav.Rational, plan *videoPlan) (*pipeline, error) {
	plan.gpu = !plan.noGPU && useGPU(par, plan.encoders)
	var dec *astiav.CodecContext
	var gpu *gpuDecoder
	var err error
	if plan.gpu {
		dec, gpu, err = openGPUDecoder(par, frameQueue*len(plan.outputs)+4)
	} else {
		dec, err = openDecoder(par)
	}
	if err != nil {
		return nil, err
	}
	p := &pipeline{plan: plan, tb: tb, dec: dec, gpu: gpu, frame: astiav.AllocFrame(), lastPTS: math.MinInt64}
	p.ctx, p.cancel = context.WithCancelCause(ctx)
	p.rungs = make([]*rungWorker, len(plan.outputs))
	for i, out := range plan.outputs {
		p.rungs[i] = &rungWorker{idx: i, out: out, cand: plan.encoders[i], plan: plan,
			in: make(chan vframe, frameQueue), segs: make(chan segment, 16), cuts: map[int64]bool{}}
		if out.ScaleFrom >= 0 {
			parent := p.rungs[out.ScaleFrom]
			parent.children = append(parent.children, p.rungs[i])
		}
	}
	for _, r := range p.rungs {
		p.wg.Go(func() {
			defer close(r.segs)
			r.err = r.run(p.ctx)
			if r.err != nil {
				p.cancel(r.err)
				for vf := range r.in { // keep senders from blocking
					if vf.f != nil {
						vf.f.Free()
					}
				}
			}
		})
	}
	return p, nil
}

// feed decodes one chunk and sends its frames to the rungs. Cuts fall on the
// chunk's first frame and at its cut targets. The decoder runs on across
// chunks, so a chunk's last frames may leave it during the next feed or close.
func (p *pipeline) feed(ch *chunk) error {
	if p.plan.live {
		// Each source segment stands alone: its first frame starts a
		// segment whatever came before.
		p.started, p.lastPTS, p.cutAt = false, math.MinInt64, p.cutAt[:0]
	}
	end := ch.end
	if end < 0 {
		end = ch.lastPTS() + p.plan.frameDur
	}
	p.cutAt = append(p.cutAt, ch.start)
	p.cutAt = append(p.cutAt, cutTargets(ch.start, end, p.plan.segDur)...)
	for _, pkt := range ch.packets {
		if err := p.dec.SendPacket(pkt); err != nil && !errors.Is(err, astiav.ErrEagain) {
			if errors.Is(err, astiav.ErrInvaliddata) {
				continue // one damaged packet; the decoder conceals it
			}
			return fmt.Errorf("decode: %w: %w", ErrInvalidInput, err)
		}
		if err := p.receive(); err != nil {
			return err
		}
	}
	return context.Cause(p.ctx)
}

// receive takes every frame the decoder has ready and fans it out.
func (p *pipeline) receive() error {
	for {
		if err := p.dec.ReceiveFrame(p.frame); err != nil {
			if errors.Is(err, astiav.ErrEagain) || errors.Is(err, astiav.ErrEof) {
				return nil
			}
			return fmt.Errorf("decode: %w: %w", ErrInvalidInput, err)
		}
		ts := p.frame.Pts()
		if ts == astiav.NoPtsValue {
			ts = p.frame.PktDts()
		}
		pts := rescale(ts, p.tb)
		if ts == astiav.NoPtsValue || pts <= p.lastPTS {
			pts = p.lastPTS + 1 // broken or repeated timestamps: stay monotonic
		}
		p.lastPTS = pts
		cut := false
		for len(p.cutAt) > 0 && pts >= p.cutAt[0] {
			cut = true
			p.cutAt = p.cutAt[1:]
		}
		if !p.started {
			cut, p.started = true, true
		}
		err := p.fanOut(pts, cut)
		p.frame.Unref()
		if err != nil {
			return err
		}
	}
}

func (p *pipeline) fanOut(pts int64, cut bool) error {
	for _, r := range p.rungs {
		if r.out.ScaleFrom >= 0 {
			continue
		}
		c := p.frame.Clone()
		if c == nil {
			return errors.New("decode: cloning frame")
		}
		select {
		case r.in <- vframe{f: c, pts: pts, cut: cut}:
		case <-p.ctx.Done():
			c.Free()
			return context.Cause(p.ctx)
		}
	}
	return nil
}

// finish ends a live source segment whose next one starts at end (90 kHz;
// -1 unknown): the decoder gives up its last frames and is reset for the
// next segment, and every rung gets a mark after the segment's frames.
func (p *pipeline) finish(end int64) error {
	if err := p.dec.SendPacket(nil); err != nil && !errors.Is(err, astiav.ErrEof) {
		return fmt.Errorf("decode: flushing: %w", err)
	}
	if err := p.receive(); err != nil {
		return err
	}
	flushDecoder(p.dec)
	if end < 0 && p.lastPTS != math.MinInt64 {
		end = p.lastPTS + p.plan.frameDur
	}
	for _, r := range p.rungs {
		if r.out.ScaleFrom >= 0 {
			continue
		}
		select {
		case r.in <- vframe{mark: true, end: end}:
		case <-p.ctx.Done():
			return context.Cause(p.ctx)
		}
	}
	return context.Cause(p.ctx)
}

// close ends the input; end is where the next chunk would start (90 kHz) or
// -1. The rungs flush their encoders and emit their last segments; close
// returns once every rung is done. Consumers must keep reading segs. A live
// pipeline ends at a mark, so close only stops it.
func (p *pipeline) close(end int64) error {
	var drainErr error
	if !p.closed {
		p.closed = true
		if p.plan.live {
			// Nothing to drain: finish did it at the last mark.
		} else if err := p.dec.SendPacket(nil); err != nil && !errors.Is(err, astiav.ErrEof) {
			drainErr = fmt.Errorf("decode: flushing: %w", err)
		} else if p.ctx.Err() == nil {
			drainErr = p.receive()
		}
		// Every rung learns the end before any input closes: a cascaded rung
		// reads it as soon as its parent, which may finish first, closes it.
		for _, r := range p.rungs {
			r.end = end
		}
		for _, r := range p.rungs {
			if r.out.ScaleFrom < 0 {
				close(r.in)
			}
		}
	}
	p.wg.Wait()
	p.cancel(nil)
	if p.gpu != nil {
		p.gpu.close(p.dec)
	} else {
		p.dec.Free()
	}
	p.frame.Free()
	errs := []error{drainErr}
	for _, r := range p.rungs {
		errs = append(errs, r.err)
	}
	return errors.Join(errs...)
}

// abort stops the pipeline after a failure.
func (p *pipeline) abort(err error) {
	p.cancel(err)
}

func (r *rungWorker) run(ctx context.Context) (err error) {
	children := r.children
	defer func() {
		for _, c := range children {
			close(c.in)
		}
		if r.sws != nil {
			r.sws.Free()
		}
		if r.pool != nil {
			r.pool.free()
		}
		if r.cuda != nil {
			r.cuda.free()
		}
		if r.enc != nil {
			r.enc.free()
		}
	}()
	fps := r.plan.srcFPS
	if r.out.FrameRate > 0 {
		fps = astiav.NewRational(int(math.Round(r.out.FrameRate*1000)), 1000)
	}
	gop := max(int(math.Round(r.plan.gop.Seconds()*fps.Float64())), 1)
	cfg := encoderConfig{
		width: r.out.Width, height: r.out.Height, fps: fps, rung: r.out.Rung, gopFrames: gop, threads: r.plan.threads[r.idx],
		lowDelay: r.plan.live && !r.plan.drainLive,
	}
	if cfg.lowDelay {
		// Low delay means slice threads, and every slice costs some
		// compression; past a few the other rungs and streams are the
		// better use of the cores.
		cfg.threads = min(cfg.threads, maxSliceThreads)
	}
	open := func(cudaInput *astiav.Frame) (err error) {
		cfg.cudaInput = cudaInput
		if r.enc, err = openEncoder(r.cand, cfg, r.plan.faults); err != nil {
			return err
		}
		r.init, err = r.plan.initCache.get(r.enc)
		return err
	}
	if !r.plan.gpu {
		// The CPU path opens at once, so a bad encoder fails before any decoding.
		if err := open(nil); err != nil {
			return err
		}
	}
	minGap := int64(0)
	if r.out.FrameRate > 0 {
		minGap = int64(float64(videoTimescale) / r.out.FrameRate)
	}
	if r.plan.live {
		r.srcPTS = map[int64]int64{}
		r.encStep = max(1, int64(math.Round(videoTimescale/fps.Float64())))
	}
	emit := func(p *astiav.Packet) error { return r.collect(ctx, p) }
	for vf := range r.in {
		if ctx.Err() != nil {
			if vf.f != nil {
				vf.f.Free()
			}
			continue
		}
		if vf.mark {
			if err := r.endSource(ctx, vf.end, emit); err != nil {
				return err
			}
			continue
		}
		if r.enc == nil && !r.plan.gpu {
			// A live session drained and closed the encoder at the last mark.
			if err := open(nil); err != nil {
				vf.f.Free()
				return err
			}
		}
		// Frame-rate cap: drop frames that come too soon, but never a cut.
		if minGap > 0 && !vf.cut && r.keptAny && vf.pts < r.nextKeep-minGap/8 {
			vf.f.Free()
			continue
		}
		r.keptAny = true
		r.nextKeep = vf.pts + minGap
		out, err := r.scale(vf.f)
		if out != vf.f {
			vf.f.Free()
			vf.f = nil
		}
		if err != nil {
			if vf.f != nil {
				vf.f.Free()
			}
			return err
		}
		for _, c := range children {
			cf := out.Clone()
			select {
			case c.in <- vframe{f: cf, pts: vf.pts, cut: vf.cut}:
			case <-ctx.Done():
				cf.Free()
			}
		}
		if r.enc == nil {
			// The GPU path opens on the first frame: NVENC reads its CUDA pool.
			if err := open(out); err != nil {
				if vf.f != nil {
					out.Free()
				} else {
					r.release(out)
				}
				return err
			}
		}
		encPTS := vf.pts
		if r.plan.live {
			encPTS = r.nextEnc
			r.nextEnc += r.encStep
			r.srcPTS[encPTS] = vf.pts
		}
		out.SetPts(encPTS)
		if vf.cut {
			out.SetPictureType(astiav.PictureTypeI)
			r.cuts[vf.pts] = true
		} else {
			out.SetPictureType(astiav.PictureTypeNone)
		}
		err = r.enc.encode(out, emit)
		if vf.f != nil {
			out.Free()
		} else {
			r.release(out)
		}
		r.frames++
		if err != nil {
			return err
		}
	}
	if err := context.Cause(ctx); err != nil {
		return nil // another rung failed; its error is the one reported
	}
	if r.enc == nil || r.plan.live {
		return nil // no frame came, or a live session's last mark ended it all
	}
	if err := r.enc.encode(nil, emit); err != nil {
		return err
	}
	if len(r.cur) > 0 {
		end := r.end
		if end < 0 {
			end = r.cur[len(r.cur)-1].dts + (r.cur[0].pts - r.cur[0].dts) + r.plan.frameDur
		}
		return r.send(ctx, buildSegment(r.cur, end))
	}
	return nil
}

// endSource ends the rung's part of a live source segment: every frame's
// packet out of the encoder, the open segment sent, ending at end, and the
// mark passed on to the cascaded rungs and the collector.
func (r *rungWorker) endSource(ctx context.Context, end int64, emit func(*astiav.Packet) error) error {
	if r.enc != nil && r.enc.held() > 0 {
		// This encoder holds frames back (B-frames, lookahead, frame
		// threads): drain it, and open a fresh one for the next segment.
		if err := r.enc.encode(nil, emit); err != nil {
			return err
		}
		r.enc.free()
		r.enc = nil
	}
	if len(r.srcPTS) > 0 {
		return fmt.Errorf("rung %s: %d frames sent to %s never came out", r.out.Rung.Name, len(r.srcPTS), r.cand.Encoder)
	}
	if len(r.cur) > 0 {
		if err := r.send(ctx, liveSegment(r.cur, end)); err != nil {
			return err
		}
		r.cur = nil
	}
	r.keptAny = false // the frame-rate cap starts over with the next segment
	for _, c := range r.children {
		select {
		case c.in <- vframe{mark: true, end: end}:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	return r.send(ctx, segment{mark: true})
}

// collect adds one encoded packet; an IDR at a cut closes the open segment.
func (r *rungWorker) collect(ctx context.Context, p *astiav.Packet) error {
	pts, dts := p.Pts(), p.Dts()
	if r.plan.live {
		src, ok := r.srcPTS[pts]
		if !ok {
			return fmt.Errorf("rung %s: %s returned a packet for no frame sent (pts %d)", r.out.Rung.Name, r.cand.Encoder, pts)
		}
		delete(r.srcPTS, pts)
		pts, dts = src, src // decode times are set when the segment is built
	}
	key := p.Flags().Has(astiav.PacketFlagKey)
	if key && r.cuts[pts] {
		delete(r.cuts, pts)
		if len(r.cur) > 0 {
			build := buildSegment
			if r.plan.live {
				build = liveSegment
			}
			if err := r.send(ctx, build(r.cur, pts)); err != nil {
				return err
			}
			r.cur = nil
		}
	}
	data := p.Data()
	var payload []byte
	switch r.cand.Codec {
	case profiles.CodecH264, profiles.CodecHEVC:
		payload = cmaf.AppendAVCC(make([]byte, 0, len(data)+16), data)
	default:
		payload = append([]byte(nil), data...)
	}
	r.cur = append(r.cur, sample{pts: pts, dts: dts, key: key, data: payload})
	return nil
}

func (r *rungWorker) send(ctx context.Context, s segment) error {
	select {
	case r.segs <- s:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// buildSegment turns samples (decode order, starting with an IDR) into a
// segment ending at next (the next segment's start). Decode times are
// shifted so the IDR decodes at its presentation time: tfdt then equals the
// source timestamp and B-frames get negative composition offsets (trun v1).
func buildSegment(ss []sample, next int64) segment {
	shift := ss[0].pts - ss[0].dts
	seg := segment{start: uint64(max(ss[0].pts, 0)), samples: make([]cmaf.Sample, len(ss))}
	for i, s := range ss {
		d := s.dts + shift
		nd := next
		if i+1 < len(ss) {
			nd = ss[i+1].dts + shift
		}
		dur := max(nd-d, 1)
		seg.samples[i] = cmaf.Sample{Duration: uint32(dur), CTSOffset: int32(s.pts - d), Keyframe: s.key, Data: s.data}
		seg.duration += uint64(dur)
		seg.bytes += len(s.data)
	}
	return seg
}

// liveSegment builds a segment of a live session, whose encoders ran on
// their own timeline: the samples decode at their presentation times in
// ascending order, so the IDR decodes when it is shown and any reordered
// frame gets a negative composition offset, as buildSegment would give.
func liveSegment(ss []sample, next int64) segment {
	pts := make([]int64, len(ss))
	for i, s := range ss {
		pts[i] = s.pts
	}
	slices.Sort(pts)
	for i := range ss {
		ss[i].dts = pts[i]
	}
	return buildSegment(ss, next)
}

// lastPTS is the chunk's largest packet timestamp (90 kHz).
func (c *chunk) lastPTS() int64 {
	last := c.start
	for _, p := range c.packets {
		if pts := rescale(p.Pts(), c.tb); pts > last {
			last = pts
		}
	}
	return last
}
