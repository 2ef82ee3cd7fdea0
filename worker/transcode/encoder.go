//go:build cgo

package transcode

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/asticode/go-astiav"
	"github.com/livegrid/livegrid/profiles"
)

// encoderConfig is what one rung asks of its encoder.
type encoderConfig struct {
	width, height int
	fps           astiav.Rational // nominal output frame rate
	rung          profiles.Rung
	gopFrames     int
	threads       int           // 0 = encoder default
	cudaInput     *astiav.Frame // GPU path: a CUDA frame whose pool the encoder reads from
	// lowDelay asks for an encoder that holds no frame back (no B-frames,
	// no lookahead, slice threads instead of frame threads), so a live
	// session gets every frame of a segment out without flushing.
	lowDelay bool
}

type encoder struct {
	cand    Candidate
	cc      *astiav.CodecContext
	pkt     *astiav.Packet
	pixFmt  astiav.PixelFormat
	frames  int // frames sent
	packets int // packets received
	faults  *Faults
}

// held is the number of frames sent whose packets have not come out yet.
func (e *encoder) held() int { return e.frames - e.packets }

// inputPixelFormat is the frame format each encoder kind is fed.
func inputPixelFormat(k profiles.EncoderKind) astiav.PixelFormat {
	if k == profiles.EncoderQSV {
		return astiav.PixelFormatNv12
	}
	return astiav.PixelFormatYuv420P
}

// x264Presets maps x264 preset names onto NVENC's p1..p7 scale.
var nvencPresets = map[string]string{
	"ultrafast": "p1", "superfast": "p2", "veryfast": "p3", "faster": "p3",
	"fast": "p4", "medium": "p4", "slow": "p5", "slower": "p6", "veryslow": "p7", "placebo": "p7",
}

func encoderOptions(cand Candidate, cfg encoderConfig) map[string]string {
	r := cfg.rung
	o := map[string]string{
		"b":       strconv.FormatInt(r.Bitrate, 10),
		"maxrate": strconv.FormatInt(r.MaxRate, 10),
		"bufsize": strconv.FormatInt(r.BufSize, 10),
		"g":       strconv.Itoa(cfg.gopFrames),
	}
	if cfg.threads > 0 {
		o["threads"] = strconv.Itoa(cfg.threads)
	}
	switch cand.Encoder {
	case "libx264":
		o["preset"] = r.Preset
		o["keyint_min"] = strconv.Itoa(cfg.gopFrames)
		o["sc_threshold"] = "0" // no scene-cut keyframes: rungs must stay aligned
		o["forced-idr"] = "1"
		if r.Profile != "" {
			o["profile"] = r.Profile
		}
		if r.Level != "" {
			o["level"] = r.Level
		}
		if cfg.lowDelay {
			// x264 holds max(bframes, rc-lookahead) + sync-lookahead +
			// frame threads - 1 frames, and one more for VFR input; with
			// all of them zero every frame comes out of the call that
			// sends it. The session's encoder timeline is CFR anyway.
			o["x264-params"] = "bframes=0:rc-lookahead=0:sync-lookahead=0:sliced-threads=1:force-cfr=1"
		}
	case "libx265":
		o["preset"] = r.Preset
		o["forced-idr"] = "1"
		if r.Profile != "" {
			o["profile"] = r.Profile
		}
		o["x265-params"] = fmt.Sprintf("log-level=error:scenecut=0:open-gop=0:keyint=%d:min-keyint=%d", cfg.gopFrames, cfg.gopFrames)
	case "libsvtav1":
		if r.Preset != "" {
			o["preset"] = r.Preset
		}
		delete(o, "maxrate")
		delete(o, "bufsize")
	case "h264_nvenc", "hevc_nvenc":
		o["preset"] = nvencPresets[r.Preset]
		if o["preset"] == "" {
			o["preset"] = "p4"
		}
		o["rc"] = "vbr"
		o["forced-idr"] = "1"
		o["no-scenecut"] = "1"
		if r.Profile != "" {
			o["profile"] = r.Profile
		}
		if r.Level != "" {
			o["level"] = r.Level
		}
		if cfg.lowDelay {
			o["bf"] = "0"
			o["delay"] = "0"
			o["zerolatency"] = "1"
		}
	case "h264_qsv", "hevc_qsv":
		o["preset"] = r.Preset
		o["forced_idr"] = "1"
		if r.Profile != "" {
			o["profile"] = r.Profile
		}
	}
	return o
}

// openEncoder opens cand for one rung.
func openEncoder(cand Candidate, cfg encoderConfig, faults *Faults) (_ *encoder, err error) {
	fail := func(err error) error {
		return &encoderError{kind: cand.Kind, encoder: cand.Encoder, stage: "open", err: err}
	}
	if faults != nil && faults.Open != nil {
		if err := faults.Open(cand); err != nil {
			return nil, fail(err)
		}
	}
	codec := astiav.FindEncoderByName(cand.Encoder)
	if codec == nil {
		return nil, fail(fmt.Errorf("not compiled into this libavcodec: %w", astiav.ErrEncoderNotFound))
	}
	cc := astiav.AllocCodecContext(codec)
	if cc == nil {
		return nil, fail(errors.New("allocating codec context"))
	}
	defer func() {
		if err != nil {
			cc.Free()
		}
	}()
	pf := inputPixelFormat(cand.Kind)
	if cfg.cudaInput != nil {
		pf = astiav.PixelFormatCuda
		if err := setEncoderFrames(cc, cfg.cudaInput); err != nil {
			return nil, fail(err)
		}
	}
	cc.SetWidth(cfg.width)
	cc.SetHeight(cfg.height)
	cc.SetPixelFormat(pf)
	cc.SetTimeBase(astiav.NewRational(1, videoTimescale))
	cc.SetFramerate(cfg.fps)
	cc.SetSampleAspectRatio(astiav.NewRational(1, 1))
	cc.SetGopSize(cfg.gopFrames)
	cc.SetBitRate(cfg.rung.Bitrate)
	cc.SetFlags(cc.Flags().Add(astiav.CodecContextFlagGlobalHeader))
	d := astiav.NewDictionary()
	defer d.Free()
	for k, v := range encoderOptions(cand, cfg) {
		if err := d.Set(k, v, 0); err != nil {
			return nil, fail(fmt.Errorf("option %s=%s: %w", k, v, err))
		}
	}
	if err := cc.Open(codec, d); err != nil {
		return nil, fail(err)
	}
	return &encoder{cand: cand, cc: cc, pkt: astiav.AllocPacket(), pixFmt: pf, faults: faults}, nil
}

// encode sends f (nil flushes) and hands every packet that comes out to emit.
// The packet is only valid during the call.
func (e *encoder) encode(f *astiav.Frame, emit func(*astiav.Packet) error) error {
	if f != nil && e.faults != nil && e.faults.Encode != nil {
		if err := e.faults.Encode(e.cand, e.frames); err != nil {
			return &encoderError{kind: e.cand.Kind, encoder: e.cand.Encoder, stage: "encode", err: err}
		}
	}
	if f != nil {
		e.frames++
	}
	if err := e.cc.SendFrame(f); err != nil && !errors.Is(err, astiav.ErrEof) {
		return &encoderError{kind: e.cand.Kind, encoder: e.cand.Encoder, stage: "encode", err: err}
	}
	for {
		if err := e.cc.ReceivePacket(e.pkt); err != nil {
			if errors.Is(err, astiav.ErrEagain) || errors.Is(err, astiav.ErrEof) {
				return nil
			}
			return &encoderError{kind: e.cand.Kind, encoder: e.cand.Encoder, stage: "encode", err: err}
		}
		e.packets++
		err := emit(e.pkt)
		e.pkt.Unref()
		if err != nil {
			return err
		}
	}
}

func (e *encoder) free() {
	e.pkt.Free()
	e.cc.Free()
}

// hardwareDevice is the libav device type each hardware kind needs.
var hardwareDevice = map[profiles.EncoderKind]astiav.HardwareDeviceType{
	profiles.EncoderNVENC: astiav.HardwareDeviceTypeCUDA,
	profiles.EncoderQSV:   astiav.HardwareDeviceTypeQSV,
	profiles.EncoderVAAPI: astiav.HardwareDeviceTypeVAAPI,
}

// probeEncoder checks that cand's device opens, that the encoder opens and
// that it encodes one small frame.
func probeEncoder(cand Candidate) (err error) {
	defer probeLogs()()
	takeAVError()
	defer func() {
		if err != nil {
			if detail := takeAVError(); detail != "" {
				err = fmt.Errorf("%w (libav: %s)", err, detail)
			}
		}
	}()
	if t, ok := hardwareDevice[cand.Kind]; ok {
		dev, err := astiav.CreateHardwareDeviceContext(t, "", nil)
		if err != nil {
			return fmt.Errorf("no %s device: %w", t, err)
		}
		freeDevice(dev)
		if cand.Kind == profiles.EncoderVAAPI {
			return errors.New("device present, but VAAPI needs hardware-frame upload, which this build does not do yet")
		}
	}
	rung := profiles.Rung{Name: "probe", Height: 144, Bitrate: 200_000, MaxRate: 220_000, BufSize: 400_000,
		Codec: cand.Codec, Preset: probePreset(cand)}
	enc, err := openEncoder(cand, encoderConfig{width: 256, height: 144, fps: astiav.NewRational(30, 1), rung: rung, gopFrames: 30}, nil)
	if err != nil {
		return err
	}
	defer enc.free()
	f := astiav.AllocFrame()
	defer f.Free()
	f.SetWidth(256)
	f.SetHeight(144)
	f.SetPixelFormat(enc.pixFmt)
	if err := f.AllocBuffer(0); err != nil {
		return fmt.Errorf("allocating probe frame: %w", err)
	}
	if err := f.ImageFillBlack(); err != nil {
		return fmt.Errorf("filling probe frame: %w", err)
	}
	got := 0
	count := func(*astiav.Packet) error { got++; return nil }
	if err := enc.encode(f, count); err != nil {
		return err
	}
	if err := enc.encode(nil, count); err != nil {
		return err
	}
	if got == 0 {
		return errors.New("encoder produced no packet for a test frame")
	}
	return nil
}

func probePreset(c Candidate) string {
	if c.Codec == profiles.CodecAV1 {
		return "12"
	}
	return "ultrafast"
}

// freeDevice drops a device context. go-astiav v0.16.0 has no Free for it, but
// detaching it from a codec context unrefs the caller's reference.
func freeDevice(dev *astiav.HardwareDeviceContext) {
	cc := astiav.AllocCodecContext(nil)
	if cc == nil {
		return
	}
	cc.SetHardwareDeviceContext(dev)
	cc.SetHardwareDeviceContext(nil)
	cc.Free()
}
