//go:build cgo

package transcode

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/asticode/go-astiav"
	"github.com/livegrid/livegrid/internal/aac"
	"github.com/livegrid/livegrid/internal/cmaf"
	"github.com/livegrid/livegrid/profiles"
)

// aacFrame is the number of samples in one AAC frame.
const aacFrame = 1024

// audioTrack turns a source audio stream into AAC samples on a continuous
// sample grid: AAC is copied, anything else is decoded, resampled and encoded.
// Timestamps follow the grid, not the container's rounded ones, so segments
// neither click nor drift at their boundaries.
type audioTrack struct {
	inTB      astiav.Rational
	rate      int // output sample rate = track timescale
	channels  int
	copyAAC   bool
	par       *astiav.CodecParameters // output codec parameters (for the init segment)
	asc       []byte                  // set when the source is ADTS
	samples   []audioSample
	nextPTS   int64 // grid position of the next sample; -1 before the first
	transcode *audioTranscoder
	// trim drops what the AAC encoder puts before the first source
	// sample (its priming frame): a live session that starts mid-stream
	// must not overlap the audio another worker made before it.
	trim     bool
	floor    int64 // set by the first source packet when trimming
	floorSet bool
}

type audioSample struct {
	pts  int64 // in 1/rate
	data []byte
}

func newAudioTrack(st *astiav.Stream, spec profiles.Audio) (*audioTrack, error) {
	in := st.CodecParameters()
	a := &audioTrack{inTB: st.TimeBase(), nextPTS: -1, par: astiav.AllocCodecParameters()}
	if in.CodecID() == astiav.CodecIDAac {
		a.copyAAC = true
		a.rate = in.SampleRate()
		a.channels = in.ChannelLayout().NbChannels()
		if err := in.Copy(a.par); err != nil {
			a.free()
			return nil, fmt.Errorf("audio: %w", err)
		}
		return a, nil
	}
	t, err := newAudioTranscoder(in, a.inTB, spec)
	if err != nil {
		a.free()
		return nil, err
	}
	a.transcode = t
	a.rate = spec.SampleRate
	a.channels = spec.Channels
	if err := t.enc.ToCodecParameters(a.par); err != nil {
		a.free()
		return nil, fmt.Errorf("audio: %w", err)
	}
	return a, nil
}

func (a *audioTrack) free() {
	if a.transcode != nil {
		a.transcode.free()
	}
	a.par.Free()
}

// push takes one source packet.
func (a *audioTrack) push(p *astiav.Packet) error {
	if !a.copyAAC {
		if a.trim && !a.floorSet && p.Pts() != astiav.NoPtsValue {
			a.floor = astiav.RescaleQ(p.Pts(), a.inTB, astiav.NewRational(1, a.rate)) - aacFrame/2
			a.floorSet = true
		}
		return a.transcode.push(p, a.add)
	}
	data := p.Data()
	if hdr, asc, err := aac.ADTS(data); err == nil {
		if a.asc == nil {
			a.asc = asc
			if err := a.par.SetExtraData(asc); err != nil {
				return fmt.Errorf("audio: %w", err)
			}
		}
		data = data[hdr:]
	}
	if len(data) == 0 {
		return nil
	}
	pts := astiav.RescaleQ(p.Pts(), a.inTB, astiav.NewRational(1, a.rate))
	a.add(pts, data)
	return nil
}

// add places one AAC frame on the grid: it follows the previous frame unless
// the source jumped by more than a frame (a real gap or a new timeline).
func (a *audioTrack) add(pts int64, data []byte) {
	if a.nextPTS >= 0 {
		if d := pts - a.nextPTS; d > -aacFrame && d < aacFrame {
			pts = a.nextPTS
		}
	}
	if pts < 0 || a.floorSet && pts < a.floor {
		return // encoder priming before the source's first sample
	}
	if n := len(a.samples); n > 0 && pts <= a.samples[n-1].pts {
		return // the source went back in time: keep the samples in order
	}
	a.samples = append(a.samples, audioSample{pts: pts, data: append([]byte(nil), data...)})
	a.nextPTS = pts + aacFrame
}

func (a *audioTrack) flush() error {
	if a.transcode != nil {
		return a.transcode.flush(a.add)
	}
	return nil
}

func (a *audioTrack) init() ([]byte, error) {
	if len(a.par.ExtraData()) == 0 {
		return nil, fmt.Errorf("audio: %w: AAC without AudioSpecificConfig", ErrInvalidInput)
	}
	return buildInit(a.par, a.rate)
}

// cut returns the segments that end before each boundary (90 kHz times) and
// keeps the rest; with final, the remainder becomes the last segment.
func (a *audioTrack) cut(boundaries []int64, final bool) []segment {
	var out []segment
	for _, b := range boundaries {
		limit := astiav.RescaleQ(b, astiav.NewRational(1, videoTimescale), astiav.NewRational(1, a.rate))
		n := 0
		for n < len(a.samples) && a.samples[n].pts+aacFrame/2 <= limit {
			n++
		}
		if n == 0 {
			continue
		}
		out = append(out, a.segment(a.samples[:n]))
		a.samples = a.samples[n:]
	}
	if final && len(a.samples) > 0 {
		out = append(out, a.segment(a.samples))
		a.samples = nil
	}
	return out
}

func (a *audioTrack) segment(ss []audioSample) segment {
	seg := segment{start: uint64(ss[0].pts), samples: make([]cmaf.Sample, len(ss))}
	for i, s := range ss {
		d := int64(aacFrame)
		if i+1 < len(ss) {
			d = ss[i+1].pts - s.pts
		}
		seg.samples[i] = cmaf.Sample{Duration: uint32(d), Keyframe: true, Data: s.data}
		seg.duration += uint64(d)
		seg.bytes += len(s.data)
	}
	return seg
}

// audioTranscoder decodes any audio, resamples it and encodes AAC.
type audioTranscoder struct {
	dec, enc    *astiav.CodecContext
	graph       *astiav.FilterGraph
	src, sink   *astiav.FilterContext
	frame, filt *astiav.Frame
	pkt         *astiav.Packet
	inTB, decTB astiav.Rational
}

func newAudioTranscoder(in *astiav.CodecParameters, inTB astiav.Rational, spec profiles.Audio) (_ *audioTranscoder, err error) {
	t := &audioTranscoder{inTB: inTB, frame: astiav.AllocFrame(), filt: astiav.AllocFrame(), pkt: astiav.AllocPacket()}
	defer func() {
		if err != nil {
			t.free()
		}
	}()
	dcodec := astiav.FindDecoder(in.CodecID())
	if dcodec == nil {
		return nil, fmt.Errorf("audio: %w: no decoder for %s", ErrUnsupportedCodec, in.CodecID())
	}
	t.dec = astiav.AllocCodecContext(dcodec)
	if err := in.ToCodecContext(t.dec); err != nil {
		return nil, fmt.Errorf("audio decoder: %w", err)
	}
	if err := t.dec.Open(dcodec, nil); err != nil {
		return nil, fmt.Errorf("audio decoder %s: %w: %w", dcodec.Name(), ErrUnsupportedCodec, err)
	}
	t.decTB = astiav.NewRational(1, t.dec.SampleRate())

	ecodec := astiav.FindEncoderByName("aac")
	if ecodec == nil {
		return nil, fmt.Errorf("audio: %w: no aac encoder", ErrNoEncoder)
	}
	t.enc = astiav.AllocCodecContext(ecodec)
	layout := astiav.ChannelLayoutStereo
	if spec.Channels == 1 {
		layout = astiav.ChannelLayoutMono
	}
	t.enc.SetChannelLayout(layout)
	t.enc.SetSampleRate(spec.SampleRate)
	t.enc.SetSampleFormat(astiav.SampleFormatFltp)
	t.enc.SetBitRate(spec.Bitrate)
	t.enc.SetTimeBase(astiav.NewRational(1, spec.SampleRate))
	t.enc.SetFlags(t.enc.Flags().Add(astiav.CodecContextFlagGlobalHeader))
	if err := t.enc.Open(ecodec, nil); err != nil {
		return nil, fmt.Errorf("audio encoder: %w", err)
	}

	t.graph = astiav.AllocFilterGraph()
	layoutIn := t.dec.ChannelLayout()
	if !layoutIn.Valid() {
		layoutIn = astiav.ChannelLayoutStereo
	}
	t.src, err = t.graph.NewFilterContext(astiav.FindFilterByName("abuffer"), "in", astiav.FilterArgs{
		"channel_layout": layoutIn.String(),
		"sample_fmt":     t.dec.SampleFormat().Name(),
		"sample_rate":    strconv.Itoa(t.dec.SampleRate()),
		"time_base":      t.decTB.String(),
	})
	if err != nil {
		return nil, fmt.Errorf("audio filter: %w", err)
	}
	if t.sink, err = t.graph.NewFilterContext(astiav.FindFilterByName("abuffersink"), "out", nil); err != nil {
		return nil, fmt.Errorf("audio filter: %w", err)
	}
	outputs, inputs := astiav.AllocFilterInOut(), astiav.AllocFilterInOut()
	defer outputs.Free()
	defer inputs.Free()
	outputs.SetName("in")
	outputs.SetFilterContext(t.src)
	inputs.SetName("out")
	inputs.SetFilterContext(t.sink)
	chain := fmt.Sprintf("aresample=%d:async=1,aformat=sample_fmts=fltp:channel_layouts=%s,asetnsamples=n=%d:p=0",
		spec.SampleRate, layout.String(), t.enc.FrameSize())
	if err := t.graph.Parse(chain, inputs, outputs); err != nil {
		return nil, fmt.Errorf("audio filter %q: %w", chain, err)
	}
	if err := t.graph.Configure(); err != nil {
		return nil, fmt.Errorf("audio filter: %w", err)
	}
	return t, nil
}

func (t *audioTranscoder) free() {
	if t.graph != nil {
		t.graph.Free()
	}
	if t.dec != nil {
		t.dec.Free()
	}
	if t.enc != nil {
		t.enc.Free()
	}
	t.frame.Free()
	t.filt.Free()
	t.pkt.Free()
}

func (t *audioTranscoder) push(p *astiav.Packet, emit func(int64, []byte)) error {
	if err := t.dec.SendPacket(p); err != nil && !errors.Is(err, astiav.ErrEagain) {
		if errors.Is(err, astiav.ErrInvaliddata) {
			return nil // conceal one damaged frame
		}
		return fmt.Errorf("audio decode: %w", err)
	}
	return t.receive(emit)
}

func (t *audioTranscoder) receive(emit func(int64, []byte)) error {
	for {
		if err := t.dec.ReceiveFrame(t.frame); err != nil {
			if errors.Is(err, astiav.ErrEagain) || errors.Is(err, astiav.ErrEof) {
				return nil
			}
			if errors.Is(err, astiav.ErrInvaliddata) {
				continue
			}
			return fmt.Errorf("audio decode: %w", err)
		}
		if t.frame.Pts() != astiav.NoPtsValue {
			t.frame.SetPts(astiav.RescaleQ(t.frame.Pts(), t.inTB, t.decTB))
		}
		err := t.filter(t.frame, emit)
		t.frame.Unref()
		if err != nil {
			return err
		}
	}
}

func (t *audioTranscoder) filter(f *astiav.Frame, emit func(int64, []byte)) error {
	if err := t.src.BuffersrcAddFrame(f, astiav.NewBuffersrcFlags(astiav.BuffersrcFlagKeepRef)); err != nil {
		return fmt.Errorf("audio filter: %w", err)
	}
	for {
		if err := t.sink.BuffersinkGetFrame(t.filt, astiav.NewBuffersinkFlags()); err != nil {
			if errors.Is(err, astiav.ErrEagain) || errors.Is(err, astiav.ErrEof) {
				return nil
			}
			return fmt.Errorf("audio filter: %w", err)
		}
		err := t.encode(t.filt, emit)
		t.filt.Unref()
		if err != nil {
			return err
		}
	}
}

func (t *audioTranscoder) encode(f *astiav.Frame, emit func(int64, []byte)) error {
	if err := t.enc.SendFrame(f); err != nil && !errors.Is(err, astiav.ErrEof) {
		return fmt.Errorf("audio encode: %w", err)
	}
	for {
		if err := t.enc.ReceivePacket(t.pkt); err != nil {
			if errors.Is(err, astiav.ErrEagain) || errors.Is(err, astiav.ErrEof) {
				return nil
			}
			return fmt.Errorf("audio encode: %w", err)
		}
		emit(t.pkt.Pts(), t.pkt.Data())
		t.pkt.Unref()
	}
}

func (t *audioTranscoder) flush(emit func(int64, []byte)) error {
	if err := t.dec.SendPacket(nil); err != nil && !errors.Is(err, astiav.ErrEof) {
		return fmt.Errorf("audio decode flush: %w", err)
	}
	if err := t.receive(emit); err != nil {
		return err
	}
	if err := t.filter(nil, emit); err != nil {
		return err
	}
	return t.encode(nil, emit)
}
