//go:build cgo

package transcode

/*
#cgo pkg-config: libavcodec
#include <libavcodec/avcodec.h>
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"time"

	"github.com/asticode/go-astiav"
	"github.com/livegrid/livegrid/profiles"
)

// LiveSession transcodes the source segments of one live stream through
// one ladder with the decoder, the scalers, the encoders and the audio
// encoder kept open from segment to segment, so no segment pays for opening
// them and x264's rate control converges as it does for a whole file.
//
// A result has the form of TranscodeSegment's: each rendition's init
// segment (the same for the whole session while the encoder stays) and
// media segments that start with an IDR at the source time of their first
// frame and hold exactly that source segment's frames. Encoders are set up
// to hold no frame back (x264: no B-frames, no lookahead, slice threads; see
// docs/speed.md); one that does hold frames (x265, SVT-AV1, QSV) is drained
// at each segment end and opened again, so the output is right for every
// encoder, only slower.
//
// A session takes one segment at a time (a second call waits) and must be
// closed.
type LiveSession struct {
	e      *Engine
	ladder *profiles.Ladder
	segDur time.Duration

	mu      sync.Mutex
	closed  bool
	video   *liveVideo // nil before the first segment and after a failure
	audio   *audioSink // nil until a segment has usable audio
	audioID string     // the source audio parameters audio was opened for
	lastSeq uint64
	haveSeq bool
	lastEnd int64 // where the last segment's video ended (90 kHz)
}

// liveVideo is a session's warm video: the plan fitted to the source and
// the pipeline running it.
type liveVideo struct {
	id   string                  // the source video parameters it was planned for
	par  *astiav.CodecParameters // owned copy, to rebuild the pipeline after a fallback
	tb   astiav.Rational
	plan *videoPlan
	p    *pipeline // nil until built, and after a failure
}

// OpenLive returns a live session for one stream and ladder. Nothing is
// opened before the first segment.
func (e *Engine) OpenLive(ladder *profiles.Ladder, opts LiveOptions) *LiveSession {
	if opts.SegmentDuration <= 0 {
		opts.SegmentDuration = 2 * time.Second
	}
	return &LiveSession{e: e, ladder: ladder, segDur: opts.SegmentDuration}
}

// Transcode transcodes the stream's next source segment. Segments are
// expected in Seq order, but any segment works: one that does not follow the
// previous (a gap, a repeat, an older one, a discontinuity) only starts the
// audio over. After a failure the session starts cold with the next segment.
func (s *LiveSession) Transcode(ctx context.Context, seg LiveSegment) (*SegmentResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("transcode segment %d: %w", seg.Seq, ErrSessionClosed)
	}
	follows := s.haveSeq && seg.Seq == s.lastSeq+1 && !seg.Discontinuity
	s.lastSeq, s.haveSeq = seg.Seq, true
	res, touched, err := s.transcode(ctx, seg, follows)
	s.haveSeq = s.haveSeq && err == nil
	if err != nil && touched {
		// Half a segment may sit in the rungs and the audio track: start
		// clean rather than let it leak into the next segment.
		s.reset()
	}
	return res, err
}

// Close frees everything the session holds. It is safe to call twice.
func (s *LiveSession) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.reset()
	return nil
}

func (s *LiveSession) reset() {
	s.resetVideo()
	s.resetAudio()
}

func (s *LiveSession) resetVideo() {
	if v := s.video; v != nil {
		if v.p != nil {
			_ = v.p.close(-1) // errors of a pipeline being dropped tell nothing new
		}
		v.par.Free()
		s.video = nil
	}
}

func (s *LiveSession) resetAudio() {
	s.audio.free()
	s.audio, s.audioID = nil, ""
}

// transcode runs one segment; touched reports whether the warm state was
// changed, so a failure must reset it.
func (s *LiveSession) transcode(ctx context.Context, seg LiveSegment, follows bool) (_ *SegmentResult, touched bool, _ error) {
	in, err := openInput(ctx, seg.Source)
	if err != nil {
		return nil, false, err
	}
	defer in.close()
	if err := s.prepareVideo(in); err != nil {
		return nil, false, err
	}
	touched = true

	pkt := astiav.AllocPacket()
	defer pkt.Free()
	// The audio waits until the video says whether this segment continues
	// the last one's timeline.
	ck := &chunker{e: s.e, in: in, segDur: time.Duration(math.MaxInt64), pkt: pkt, holdAudio: true}
	defer func() {
		if ck.cur != nil {
			ck.cur.free()
		}
		for _, p := range ck.heldAudio {
			p.Free()
		}
	}()
	ch, err := ck.next(ctx)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("transcode segment %d: %w: no video keyframe in %s", seg.Seq, ErrInvalidInput, seg.Source)
		}
		return nil, touched, err
	}
	defer ch.free()
	ch.end = seg.End
	// The warm audio goes on only where this segment starts where the last
	// one ended (less a frame: the grid absorbs that much); anything
	// else is another timeline, and what the audio track still holds
	// would overlap it.
	follows = follows && ch.start >= s.lastEnd-3000 && ch.start <= s.lastEnd+videoTimescale/2
	s.prepareAudio(in, seg.Source, follows)
	for _, p := range ck.heldAudio {
		s.audio.push(p)
	}

	v := s.video
	sets, fallbacks, err := s.runVideo(ctx, ch)
	if err != nil {
		return nil, touched, err
	}
	res := &SegmentResult{Fallbacks: fallbacks, Renditions: make([]RenditionResult, len(v.plan.outputs))}
	var bounds []int64
	for i, rs := range sets {
		ri, err := v.plan.renditionInfo(i, v.p.rungs[i].init, v.p.rungs[i].cand)
		if err != nil {
			return nil, touched, err
		}
		rr := &res.Renditions[i]
		rr.RenditionInfo = ri
		for k, sg := range rs {
			rr.Segments = append(rr.Segments, mediaSegment(uint64(k), sg))
			if i == 0 {
				bounds = append(bounds, int64(sg.start+sg.duration))
			}
		}
	}
	s.lastEnd = bounds[len(bounds)-1]
	info, asegs, err := s.audio.liveSegments(bounds)
	if err != nil {
		return nil, touched, err
	}
	if info != nil {
		res.Renditions = append(res.Renditions, RenditionResult{RenditionInfo: *info, Segments: asegs})
	}
	return res, touched, nil
}

// prepareVideo keeps the warm video when in carries the same video as
// before, and plans it afresh otherwise.
func (s *LiveSession) prepareVideo(in *input) error {
	id := streamID(in.video)
	if s.video != nil && s.video.id == id {
		return nil
	}
	plan, err := s.e.plan(in, s.ladder, s.segDur)
	if err != nil {
		return err
	}
	plan.live, plan.drainLive = true, s.e.drainLive
	par := astiav.AllocCodecParameters()
	if err := in.video.CodecParameters().Copy(par); err != nil {
		par.Free()
		return fmt.Errorf("live session: %w", err)
	}
	if s.video != nil {
		s.e.log.Info("live session: source video changed; reopening", "from", s.video.id, "to", id)
	}
	s.resetVideo()
	s.video = &liveVideo{id: id, par: par, tb: in.video.TimeBase(), plan: plan}
	return nil
}

// prepareAudio keeps the warm audio track when in carries the same audio
// and the segment follows the last one; otherwise what the track still
// holds belongs to another segment's time, and it starts over.
func (s *LiveSession) prepareAudio(in *input, src Source, follows bool) {
	if !follows {
		s.resetAudio()
	}
	if in.audio == nil {
		return
	}
	id := streamID(in.audio)
	if s.audio != nil && s.audioID == id {
		return
	}
	s.resetAudio()
	s.audio = s.e.openAudio(in, s.ladder, src)
	if s.audio != nil {
		s.audio.track.trim = true
		s.audioID = id
	}
}

// streamID names what a source stream needs its decoder opened for.
func streamID(st *astiav.Stream) string {
	p := st.CodecParameters()
	return fmt.Sprintf("%s/%dx%d/%d/%d/%d/%s/%x", p.CodecID(), p.Width(), p.Height(), p.PixelFormat(), p.SampleRate(),
		p.ChannelLayout().NbChannels(), st.TimeBase(), p.ExtraData())
}

// runVideo runs one chunk through the warm pipeline and returns each rung's
// segments. When a hardware encoder fails, it falls back through the chain
// exactly as drive does and runs the chunk again on a new pipeline, so the
// segment is not lost; earlier segments are already out.
func (s *LiveSession) runVideo(ctx context.Context, ch *chunk) (sets [][]segment, fallbacks int, err error) {
	v := s.video
	for attempt := 0; ; attempt++ {
		if v.p == nil {
			v.p, err = newPipeline(context.Background(), v.par, v.tb, v.plan)
		}
		if err == nil {
			sets, err = runLive(ctx, v.p, ch)
			if err == nil {
				return sets, fallbacks, nil
			}
		}
		if v.p != nil {
			_ = v.p.close(-1) // the failure is err
			v.p = nil
		}
		var ee *encoderError
		if !errors.As(err, &ee) || ee.kind == profiles.EncoderSoftware || attempt >= 8 || ctx.Err() != nil {
			return nil, fallbacks, err
		}
		fallbacks++
		if gpuComponents[ee.encoder] {
			s.e.log.Warn("GPU path failed, feeding NVENC from system memory", "component", ee.encoder, "reason", ee.err)
			v.plan.noGPU = true
			err = nil
			continue
		}
		for i, c := range v.plan.encoders {
			if c.Encoder == ee.encoder && c.Kind == ee.kind {
				s.e.chain.Failed(c, s.e.prefs(v.plan.outputs[i].Rung), ee)
				break
			}
		}
		if err := s.e.selectEncoders(v.plan); err != nil {
			return nil, fallbacks, fmt.Errorf("%w (after %v)", err, ee)
		}
		err = nil
	}
}

// runLive feeds one chunk to a live pipeline, ends it with a mark and reads
// every rung's segments up to the mark. ctx ending aborts the pipeline.
func runLive(ctx context.Context, p *pipeline, ch *chunk) (sets [][]segment, err error) {
	stop := context.AfterFunc(ctx, func() { p.abort(context.Cause(ctx)) })
	defer func() {
		if !stop() && err == nil {
			// ctx ended as the segment did: the pipeline may be aborted,
			// so it must not be used again.
			sets, err = nil, context.Cause(ctx)
		}
	}()
	type collected struct {
		sets [][]segment
		err  error
	}
	got := make(chan collected, 1)
	go func() {
		ss, cerr := collectLive(p)
		got <- collected{ss, cerr}
	}()
	err = p.feed(ch)
	if err == nil {
		err = p.finish(ch.end)
	}
	if err != nil {
		p.abort(err)
	}
	c := <-got
	if err != nil {
		return nil, err
	}
	return c.sets, c.err
}

// collectLive reads each rung's segments up to its mark.
func collectLive(p *pipeline) ([][]segment, error) {
	sets := make([][]segment, len(p.rungs))
	for i, r := range p.rungs {
		if err := readToMark(p, r, &sets[i]); err != nil {
			return nil, err
		}
	}
	for i, r := range p.rungs {
		if len(sets[i]) != len(sets[0]) {
			err := fmt.Errorf("transcode: rungs made different numbers of segments (%s %d, %s %d)",
				p.rungs[0].out.Rung.Name, len(sets[0]), r.out.Rung.Name, len(sets[i]))
			p.abort(err)
			return nil, err
		}
	}
	if len(sets[0]) == 0 {
		return nil, fmt.Errorf("transcode: %w: no decodable video frame", ErrInvalidInput)
	}
	return sets, nil
}

// readToMark appends r's segments to set until r's mark.
func readToMark(p *pipeline, r *rungWorker, set *[]segment) error {
	for {
		select {
		case s, ok := <-r.segs:
			if !ok {
				if err := context.Cause(p.ctx); err != nil {
					return err
				}
				return fmt.Errorf("transcode: rung %s ended before its segment did", r.out.Rung.Name)
			}
			if s.mark {
				return nil
			}
			*set = append(*set, s)
		case <-p.ctx.Done():
			return context.Cause(p.ctx)
		}
	}
}

// flushDecoder resets a drained decoder so it takes packets again; go-astiav
// v0.16.0 does not wrap avcodec_flush_buffers.
func flushDecoder(cc *astiav.CodecContext) { C.avcodec_flush_buffers(rawCodecContext(cc)) }
