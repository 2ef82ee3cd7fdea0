//go:build cgo

package transcode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"runtime"
	"sync"
	"time"

	"github.com/asticode/go-astiav"
	"github.com/livegrid/livegrid/internal/cmaf"
	"github.com/livegrid/livegrid/profiles"
)

// Engine transcodes sources into ABR ladders. It is safe for concurrent use.
type Engine struct {
	opts  Options
	chain *Chain
	log   *slog.Logger
	inits initCache
	// drainLive (tests) gives live sessions the ladder's encoder settings,
	// drained and reopened at every segment end, to measure against.
	drainLive bool
}

// New returns an Engine.
func New(opts Options) *Engine {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Chain == nil {
		opts.Chain = &Chain{Log: opts.Log}
	}
	routeLogs(opts.Log)
	return &Engine{opts: opts, chain: opts.Chain, log: opts.Log}
}

// Chain returns the engine's encoder chain.
func (e *Engine) Chain() *Chain { return e.chain }

// plan fits the ladder to the input's video and picks an encoder per rung.
func (e *Engine) plan(in *input, ladder *profiles.Ladder, segDur time.Duration) (*videoPlan, error) {
	par := in.video.CodecParameters()
	fps := in.video.AvgFrameRate()
	if fps.Num() <= 0 || fps.Den() <= 0 {
		fps = in.video.RFrameRate()
	}
	if fps.Num() <= 0 || fps.Den() <= 0 || fps.Float64() > 240 {
		fps = astiav.NewRational(30, 1)
	}
	sar := par.SampleAspectRatio()
	outs, err := ladder.Resolve(par.Width(), par.Height(), sar.Num(), sar.Den(), fps.Float64())
	if err != nil {
		return nil, fmt.Errorf("plan ladder: %w", err)
	}
	for _, o := range outs {
		if o.Width > maxDimension || o.Height > maxDimension {
			return nil, fmt.Errorf("plan ladder: %w: %dx%d with sample aspect %d:%d gives a %dx%d rendition",
				ErrInvalidInput, par.Width(), par.Height(), sar.Num(), sar.Den(), o.Width, o.Height)
		}
	}
	p := &videoPlan{outputs: outs, srcFPS: fps, gop: ladder.GOP, segDur: segDur, threads: rungThreads(outs, e.opts.Threads, runtime.NumCPU()), faults: e.opts.Faults,
		frameDur: int64(math.Round(videoTimescale / fps.Float64())), initCache: &e.inits}
	if err := e.selectEncoders(p); err != nil {
		return nil, err
	}
	return p, nil
}

func (e *Engine) prefs(r profiles.Rung) []profiles.EncoderKind {
	if e.opts.Encoder != "" && e.opts.Encoder != "auto" {
		return []profiles.EncoderKind{e.opts.Encoder}
	}
	return r.Encoders
}

func (e *Engine) selectEncoders(p *videoPlan) error {
	p.encoders = make([]Candidate, len(p.outputs))
	for i, o := range p.outputs {
		c, err := e.chain.Select(o.Rung.Codec, e.prefs(o.Rung))
		if err != nil {
			return fmt.Errorf("rung %s: %w", o.Rung.Name, err)
		}
		p.encoders[i] = c
	}
	return nil
}

// segmentSet is one output segment across every rung.
type segmentSet struct {
	segs     []segment
	inits    [][]byte
	encoders []Candidate
}

func (s segmentSet) end() int64 { return int64(s.segs[0].start + s.segs[0].duration) }

// drive feeds the chunks from next through a warm pipeline and hands every
// complete segment set to emit, in order. When a hardware encoder fails (to
// open or mid-stream), it marks the encoder bad, takes the chain's next one,
// rebuilds the pipeline and replays the chunks whose segments were not all
// emitted yet, so no segment is lost or emitted twice.
func (e *Engine) drive(ctx context.Context, par *astiav.CodecParameters, tb astiav.Rational, plan *videoPlan,
	next func() (*chunk, error), emit func(segmentSet) error) (fallbacks int, err error) {
	st := &replay{watermark: math.MinInt64}
	defer func() {
		for _, c := range st.pending {
			c.free()
		}
	}()
	for attempt := 0; ; attempt++ {
		err := e.runPipeline(ctx, par, tb, plan, st, next, emit)
		if err == nil {
			return fallbacks, nil
		}
		var ee *encoderError
		if !errors.As(err, &ee) || ee.kind == profiles.EncoderSoftware || attempt >= 8 || ctx.Err() != nil {
			// Software encoders have no device to lose: a failure is the
			// input's or the settings', and the chain has nothing after them.
			return fallbacks, err
		}
		fallbacks++
		if gpuComponents[ee.encoder] {
			e.log.Warn("GPU path failed, feeding NVENC from system memory", "component", ee.encoder, "reason", ee.err)
			plan.noGPU = true
			continue
		}
		for i, c := range plan.encoders {
			if c.Encoder == ee.encoder && c.Kind == ee.kind {
				e.chain.Failed(c, e.prefs(plan.outputs[i].Rung), ee)
				break
			}
		}
		if err := e.selectEncoders(plan); err != nil {
			return fallbacks, fmt.Errorf("%w (after %v)", err, ee)
		}
	}
}

// collectSets reads segment k of every rung, for k = 0, 1, ..., until the
// rungs are done. It always drains every rung so none blocks.
func collectSets(p *pipeline, emit func(segmentSet) error) error {
	var failed error
	for {
		set := segmentSet{}
		open := 0
		for _, r := range p.rungs {
			s, ok := <-r.segs
			if ok {
				open++
				set.segs = append(set.segs, s)
				set.inits = append(set.inits, r.init)
				set.encoders = append(set.encoders, r.cand)
			}
		}
		if open == 0 {
			return failed
		}
		if failed != nil {
			continue
		}
		if open != len(p.rungs) {
			if context.Cause(p.ctx) == nil {
				failed = fmt.Errorf("transcode: rungs made different numbers of segments")
				p.abort(failed)
			}
			continue
		}
		if err := emit(set); err != nil {
			failed = err
			p.abort(err)
		}
	}
}

// chunker reads a demuxer and cuts its video into chunks at source
// keyframes, once a chunk is at least 90% of the segment duration. Audio
// packets go to audio on the way.
type chunker struct {
	e      *Engine
	in     *input
	audio  *audioSink
	segDur time.Duration
	pkt    *astiav.Packet
	cur    *chunk
	done   bool
	// holdAudio keeps the audio packets in heldAudio (owned by the
	// caller) instead of pushing them to audio.
	holdAudio bool
	heldAudio []*astiav.Packet
}

func (c *chunker) next(ctx context.Context) (*chunk, error) {
	if c.done {
		return nil, io.EOF
	}
	vtb := c.in.video.TimeBase()
	segTicks := int64(c.segDur.Seconds() * videoTimescale)
	for {
		if err := c.in.fc.ReadFrame(c.pkt); err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if !errors.Is(err, astiav.ErrEof) {
				// Truncated or damaged input: keep what was read before it.
				c.e.log.Warn("input ends early", "error", err)
			}
			c.done = true
			if ch := c.cur; ch != nil && len(ch.packets) > 0 {
				c.cur = nil
				return ch, nil
			}
			return nil, io.EOF
		}
		var out *chunk
		switch c.pkt.StreamIndex() {
		case c.in.video.Index():
			if c.pkt.Pts() == astiav.NoPtsValue {
				c.pkt.SetPts(c.pkt.Dts())
			}
			key := c.pkt.Flags().Has(astiav.PacketFlagKey)
			pts := rescale(c.pkt.Pts(), vtb)
			if c.cur == nil && !key {
				break // undecodable until the first keyframe
			}
			if c.cur != nil && key && pts-c.cur.start >= segTicks-segTicks/10 {
				c.cur.end = pts
				out, c.cur = c.cur, nil
			}
			if c.cur == nil {
				c.cur = &chunk{par: c.in.video.CodecParameters(), tb: vtb, start: pts, end: -1}
			}
			c.cur.packets = append(c.cur.packets, c.pkt.Clone())
		case audioIndex(c.in):
			if c.holdAudio {
				c.heldAudio = append(c.heldAudio, c.pkt.Clone())
			} else {
				c.audio.push(c.pkt)
			}
		}
		c.pkt.Unref()
		if out != nil {
			return out, nil
		}
	}
}

func audioIndex(in *input) int {
	if in.audio == nil {
		return -1
	}
	return in.audio.Index()
}

// audioSink guards an audio track shared by the demuxer (push) and the
// segment emitter (cut).
type audioSink struct {
	mu      sync.Mutex
	track   *audioTrack
	log     *slog.Logger
	ladder  *profiles.Ladder
	info    *RenditionInfo // built on first use
	started bool
	seq     uint64
}

func (a *audioSink) push(p *astiav.Packet) {
	if a == nil || a.track == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.track.push(p); err != nil {
		a.log.Warn("audio packet dropped", "error", err)
	}
}

// segments cuts the audio at the given video boundaries (final: all of it)
// and returns the rendition (once, with its init segment) and the segments.
func (a *audioSink) segments(bounds []int64, final bool) (*RenditionInfo, []Segment, error) {
	if a == nil || a.track == nil {
		return nil, nil, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.segmentsLocked(bounds, final)
}

// liveSegments cuts a live session's audio at one source segment's video
// boundaries; what plays after the last one waits for the next segment.
// Every call returns the rendition, and Seq counts from 0 in each.
func (a *audioSink) liveSegments(bounds []int64) (*RenditionInfo, []Segment, error) {
	if a == nil || a.track == nil {
		return nil, nil, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.seq, a.started = 0, false
	return a.segmentsLocked(bounds, false)
}

func (a *audioSink) segmentsLocked(bounds []int64, final bool) (*RenditionInfo, []Segment, error) {
	t := a.track
	if final {
		if err := t.flush(); err != nil {
			return nil, nil, err
		}
	}
	segs := t.cut(bounds, final)
	if len(segs) == 0 {
		return nil, nil, nil
	}
	var info *RenditionInfo
	if !a.started {
		if a.info == nil {
			init, err := t.init()
			if err != nil {
				return nil, nil, err
			}
			ci, err := cmaf.ParseInit(init)
			if err != nil {
				return nil, nil, fmt.Errorf("audio rendition: %w", err)
			}
			a.info = &RenditionInfo{Name: audioRendition, Kind: "audio", Bitrate: a.ladder.Audio.Bitrate, Codec: ci.Codec,
				Encoder: "copy", Timescale: uint32(t.rate), SampleRate: t.rate, Channels: t.channels, Init: init}
			if t.transcode != nil {
				a.info.Encoder = "aac"
			}
		}
		info = a.info
		a.started = true
	}
	out := make([]Segment, len(segs))
	for i, s := range segs {
		out[i] = Segment{Seq: a.seq, Start: s.start, Duration: s.duration, Timescale: uint32(t.rate), Frames: len(s.samples),
			Data: cmaf.AppendMediaSegment(make([]byte, 0, s.bytes+512), uint32(a.seq+1), 1, s.start, s.samples)}
		a.seq++
	}
	return info, out, nil
}

func (a *audioSink) free() {
	if a != nil && a.track != nil {
		a.track.free()
	}
}

// openAudio prepares the audio rendition, or nil when there is none (an
// unusable audio stream is logged and dropped; the video goes on).
func (e *Engine) openAudio(in *input, ladder *profiles.Ladder, src Source) *audioSink {
	if in.audio == nil {
		return nil
	}
	t, err := newAudioTrack(in.audio, ladder.Audio)
	if err != nil {
		e.log.Warn("audio dropped", "source", src.String(), "error", err)
		return nil
	}
	return &audioSink{track: t, log: e.log, ladder: ladder}
}

// renditionInfo describes rung i of plan from its init segment.
func (plan *videoPlan) renditionInfo(i int, init []byte, enc Candidate) (RenditionInfo, error) {
	out := plan.outputs[i]
	ci, err := cmaf.ParseInit(init)
	if err != nil {
		return RenditionInfo{}, fmt.Errorf("rendition %s: %w", out.Rung.Name, err)
	}
	fr := out.FrameRate
	if fr == 0 {
		fr = plan.srcFPS.Float64()
	}
	return RenditionInfo{Name: out.Rung.Name, Kind: "video", Width: out.Width, Height: out.Height, FrameRate: fr,
		Bitrate: out.Rung.Bitrate, Codec: ci.Codec, Encoder: enc.Encoder, Timescale: ci.Timescale, Init: init}, nil
}

func mediaSegment(seq uint64, s segment) Segment {
	return Segment{Seq: seq, Start: s.start, Duration: s.duration, Timescale: videoTimescale, Frames: len(s.samples),
		Data: cmaf.AppendMediaSegment(make([]byte, 0, s.bytes+1024), uint32(seq+1), 1, s.start, s.samples)}
}

// TranscodeFile transcodes a whole file or URL through the ladder. The video
// is cut into GOP-aligned chunks, exactly as the live path cuts source
// segments, and runs through one warm pipeline.
func (e *Engine) TranscodeFile(ctx context.Context, src Source, ladder *profiles.Ladder, fo FileOptions, sink Sink) (*Summary, error) {
	if fo.SegmentDuration <= 0 {
		fo.SegmentDuration = 2 * time.Second
	}
	in, err := openInput(ctx, src)
	if err != nil {
		return nil, err
	}
	defer in.close()
	plan, err := e.plan(in, ladder, fo.SegmentDuration)
	if err != nil {
		return nil, err
	}
	audio := e.openAudio(in, ladder, src)
	defer audio.free()
	total := time.Duration(0)
	if d := in.fc.Duration(); d > 0 {
		total = time.Duration(d) * time.Microsecond
	}
	pkt := astiav.AllocPacket()
	defer pkt.Free()
	ck := &chunker{e: e, in: in, audio: audio, segDur: fo.SegmentDuration, pkt: pkt}
	defer func() {
		if ck.cur != nil {
			ck.cur.free()
		}
	}()
	sum := &Summary{Source: src.String()}
	inits := map[string][]byte{}
	var seq uint64
	var done time.Duration
	emitAudio := func(bounds []int64, final bool) error {
		info, segs, err := audio.segments(bounds, final)
		if err != nil {
			return err
		}
		if info != nil {
			if err := sink.Rendition(*info); err != nil {
				return err
			}
			sum.Renditions = upsert(sum.Renditions, *info)
		}
		for _, s := range segs {
			if err := sink.Segment(audioRendition, s); err != nil {
				return err
			}
		}
		return nil
	}
	emit := func(set segmentSet) error {
		setFrames := 0
		for i, s := range set.segs {
			name := plan.outputs[i].Rung.Name
			if string(inits[name]) != string(set.inits[i]) {
				ri, err := plan.renditionInfo(i, set.inits[i], set.encoders[i])
				if err != nil {
					return err
				}
				if err := sink.Rendition(ri); err != nil {
					return err
				}
				inits[name] = set.inits[i]
				sum.Renditions = upsert(sum.Renditions, ri)
			}
			if err := sink.Segment(name, mediaSegment(seq, s)); err != nil {
				return err
			}
			setFrames = max(setFrames, len(s.samples))
		}
		sum.Frames += setFrames
		seq++
		sum.Segments++
		done += time.Duration(set.segs[0].duration) * time.Second / videoTimescale
		sum.Duration = done
		if err := emitAudio([]int64{set.end()}, false); err != nil {
			return err
		}
		if fo.Progress != nil {
			fo.Progress(done, total)
		}
		return nil
	}
	next := func() (*chunk, error) { return ck.next(ctx) }
	sum.Fallbacks, err = e.drive(ctx, in.video.CodecParameters(), in.video.TimeBase(), plan, next, emit)
	if err != nil {
		return sum, err
	}
	if sum.Segments == 0 {
		return sum, fmt.Errorf("transcode %s: %w: no decodable video frame", src, ErrInvalidInput)
	}
	return sum, emitAudio(nil, true)
}

// TranscodeSegment transcodes one GOP-aligned source segment (the live path's
// unit of work) into every rung of the ladder. When the source GOP is longer
// than opts.SegmentDuration, the rungs are cut into several output segments
// at forced IDRs. Segment Seq values count from 0 within the result.
func (e *Engine) TranscodeSegment(ctx context.Context, src Source, ladder *profiles.Ladder, opts SegmentOptions) (*SegmentResult, error) {
	if opts.SegmentDuration <= 0 {
		opts.SegmentDuration = 2 * time.Second
	}
	in, err := openInput(ctx, src)
	if err != nil {
		return nil, err
	}
	defer in.close()
	plan, err := e.plan(in, ladder, opts.SegmentDuration)
	if err != nil {
		return nil, err
	}
	audio := e.openAudio(in, ladder, src)
	defer audio.free()
	pkt := astiav.AllocPacket()
	defer pkt.Free()
	// One chunk: the whole segment, whatever its GOP length.
	ck := &chunker{e: e, in: in, audio: audio, segDur: time.Duration(math.MaxInt64), pkt: pkt}
	ch, err := ck.next(ctx)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("transcode segment: %w: no video keyframe in %s", ErrInvalidInput, src)
		}
		return nil, err
	}
	ch.end = opts.End
	served := false
	next := func() (*chunk, error) {
		if served {
			return nil, io.EOF
		}
		served = true
		return ch, nil
	}
	res := &SegmentResult{Renditions: make([]RenditionResult, len(plan.outputs))}
	var bounds []int64
	emit := func(set segmentSet) error {
		for i, s := range set.segs {
			rr := &res.Renditions[i]
			if rr.Init == nil || string(rr.Init) != string(set.inits[i]) {
				ri, err := plan.renditionInfo(i, set.inits[i], set.encoders[i])
				if err != nil {
					return err
				}
				rr.RenditionInfo = ri
			}
			rr.Segments = append(rr.Segments, mediaSegment(uint64(len(rr.Segments)), s))
		}
		bounds = append(bounds, set.end())
		return nil
	}
	res.Fallbacks, err = e.drive(ctx, in.video.CodecParameters(), in.video.TimeBase(), plan, next, emit)
	if err != nil {
		return res, err
	}
	if len(bounds) > 0 {
		bounds = bounds[:len(bounds)-1]
	}
	info, segs, err := audio.segments(bounds, true)
	if err != nil {
		return res, err
	}
	if info != nil {
		res.Renditions = append(res.Renditions, RenditionResult{RenditionInfo: *info, Segments: segs})
	}
	return res, nil
}

func upsert(rs []RenditionInfo, r RenditionInfo) []RenditionInfo {
	for i := range rs {
		if rs[i].Name == r.Name {
			rs[i] = r
			return rs
		}
	}
	return append(rs, r)
}

// replay is what drive keeps across pipeline attempts.
type replay struct {
	pending   []*chunk // chunks whose segments were not all emitted, in order
	eof       bool
	mu        sync.Mutex // guards watermark, which the collector advances
	watermark int64      // end of the last emitted segment set
}

func (r *replay) emitted() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.watermark
}

// runPipeline is one attempt of drive: it builds a pipeline, replays the
// pending chunks, then feeds new ones until the source ends or a failure.
func (e *Engine) runPipeline(ctx context.Context, par *astiav.CodecParameters, tb astiav.Rational, plan *videoPlan,
	st *replay, next func() (*chunk, error), emit func(segmentSet) error) error {
	p, err := newPipeline(ctx, par, tb, plan)
	if err != nil {
		return err
	}
	collected := make(chan error, 1)
	go func() {
		collected <- collectSets(p, func(set segmentSet) error {
			if int64(set.segs[0].start) < st.emitted() {
				return nil // emitted before a fallback; this is the replay
			}
			if err := emit(set); err != nil {
				return err
			}
			st.mu.Lock()
			st.watermark = set.end()
			st.mu.Unlock()
			return nil
		})
	}()
	var feedErr error
	for _, ch := range st.pending {
		if feedErr = p.feed(ch); feedErr != nil {
			break
		}
	}
	for feedErr == nil && !st.eof {
		ch, err := next()
		if errors.Is(err, io.EOF) {
			st.eof = true
			break
		}
		if err != nil {
			feedErr = err
			p.abort(err)
			break
		}
		st.pending = append(st.pending, ch)
		feedErr = p.feed(ch)
		w := st.emitted()
		for len(st.pending) > 1 && st.pending[0].end >= 0 && st.pending[0].end <= w {
			st.pending[0].free()
			st.pending = st.pending[1:]
		}
	}
	end := int64(-1)
	if len(st.pending) > 0 {
		end = st.pending[len(st.pending)-1].end
	}
	closeErr := p.close(end)
	return errors.Join(<-collected, feedErr, closeErr)
}
