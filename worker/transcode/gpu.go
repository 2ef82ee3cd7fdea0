//go:build cgo

package transcode

/*
#cgo pkg-config: libavcodec libavfilter libavutil
#include <libavcodec/avcodec.h>
#include <libavfilter/buffersrc.h>
#include <libavfilter/buffersink.h>
#include <libavutil/hwcontext.h>

static int lg_set_encoder_frames(AVCodecContext *enc, AVBufferRef *frames) {
	av_buffer_unref(&enc->hw_frames_ctx);
	enc->hw_frames_ctx = av_buffer_ref(frames);
	return enc->hw_frames_ctx ? 0 : AVERROR(ENOMEM);
}

static int lg_buffersrc_frames(AVFilterContext *src, AVBufferRef *frames) {
	AVBufferSrcParameters *p = av_buffersrc_parameters_alloc();
	if (!p) return AVERROR(ENOMEM);
	p->format = AV_PIX_FMT_NONE;
	p->hw_frames_ctx = frames;
	int r = av_buffersrc_parameters_set(src, p);
	av_free(p);
	return r;
}

static AVBufferRef *lg_frame_frames(AVFrame *f) { return f->hw_frames_ctx; }
static int lg_codec_width(AVCodecContext *c) { return c->width; }
*/
import "C"

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unsafe"

	"github.com/asticode/go-astiav"
	"github.com/livegrid/livegrid/profiles"
)

// The GPU path keeps frames in CUDA memory from decode to encode: NVDEC
// decodes, scale_cuda scales each rung, NVENC encodes the CUDA surfaces.
// go-astiav v0.16.0 exposes neither hw_frames_ctx on a codec context nor
// buffersrc parameters, so the few lines that need them are C here, reached
// through the libav pointers go-astiav keeps in its first struct field
// (TestRawPointers pins that layout).

func rawPointer(v any) unsafe.Pointer {
	return unsafe.Pointer(reflect.ValueOf(v).Elem().Field(0).Pointer())
}

func rawCodecContext(cc *astiav.CodecContext) *C.AVCodecContext {
	return (*C.AVCodecContext)(rawPointer(cc))
}

func rawFilterContext(fc *astiav.FilterContext) *C.AVFilterContext {
	return (*C.AVFilterContext)(rawPointer(fc))
}

func rawFrame(f *astiav.Frame) *C.AVFrame { return (*C.AVFrame)(f.UnsafePointer()) }

// cudaDecoders are the source codecs NVDEC decodes through libav's hwaccel.
var cudaDecoders = map[astiav.CodecID]bool{
	astiav.CodecIDH264: true, astiav.CodecIDHevc: true,
}

// useGPU says whether a plan can stay on the GPU: every rung on NVENC and a
// source codec NVDEC decodes.
func useGPU(par *astiav.CodecParameters, encoders []Candidate) bool {
	if !cudaDecoders[par.CodecID()] || len(encoders) == 0 {
		return false
	}
	for _, c := range encoders {
		if c.Kind != profiles.EncoderNVENC || !strings.HasSuffix(c.Encoder, "_nvenc") {
			return false
		}
	}
	return true
}

// gpuComponents name the GPU path's own parts in encoder errors: when one of
// them fails, the engine drops to system-memory frames but keeps NVENC.
var gpuComponents = map[string]bool{"nvdec": true, "scale_cuda": true}

// gpuDecoder is a CUDA-hwaccel decoder and the device it runs on.
type gpuDecoder struct {
	dev *astiav.HardwareDeviceContext
}

// openGPUDecoder opens par's decoder with frames left in CUDA memory. A
// failure is reported as an NVENC open failure, so the chain falls back.
func openGPUDecoder(par *astiav.CodecParameters, held int) (*astiav.CodecContext, *gpuDecoder, error) {
	fail := func(err error) error {
		return &encoderError{kind: profiles.EncoderNVENC, encoder: "nvdec", stage: "open", err: err}
	}
	dev, err := astiav.CreateHardwareDeviceContext(astiav.HardwareDeviceTypeCUDA, "", nil)
	if err != nil {
		return nil, nil, fail(fmt.Errorf("cuda device: %w", err))
	}
	codec := astiav.FindDecoder(par.CodecID())
	cc := astiav.AllocCodecContext(codec)
	if cc == nil {
		freeDevice(dev)
		return nil, nil, fail(errors.New("allocating decoder"))
	}
	if err := par.ToCodecContext(cc); err != nil {
		cc.Free()
		freeDevice(dev)
		return nil, nil, fail(err)
	}
	cc.SetHardwareDeviceContext(dev)
	cc.SetPixelFormatCallback(func(pfs []astiav.PixelFormat) astiav.PixelFormat {
		for _, pf := range pfs {
			if pf == astiav.PixelFormatCuda {
				return pf
			}
		}
		return astiav.PixelFormatNone // no CUDA surface: fail rather than decode on the CPU unseen
	})
	// Frames wait in the rung queues; NVDEC's surface pool must cover them.
	cc.SetExtraHardwareFrames(held)
	if err := cc.Open(codec, nil); err != nil {
		cc.SetPixelFormatCallback(nil)
		cc.Free()
		freeDevice(dev)
		return nil, nil, fail(err)
	}
	return cc, &gpuDecoder{dev: dev}, nil
}

func (g *gpuDecoder) close(cc *astiav.CodecContext) {
	cc.SetPixelFormatCallback(nil)
	cc.Free()
	freeDevice(g.dev)
}

// cudaScaler is one rung's scale_cuda filter graph.
type cudaScaler struct {
	graph     *astiav.FilterGraph
	src, sink *astiav.FilterContext
	w, h      int
}

func newCUDAScaler(in *astiav.Frame, w, h int) (_ *cudaScaler, err error) {
	s := &cudaScaler{graph: astiav.AllocFilterGraph(), w: w, h: h}
	defer func() {
		if err != nil {
			s.free()
		}
	}()
	s.src, err = s.graph.NewFilterContext(astiav.FindFilterByName("buffer"), "in", astiav.FilterArgs{
		"video_size":   strconv.Itoa(in.Width()) + "x" + strconv.Itoa(in.Height()),
		"pix_fmt":      strconv.Itoa(int(astiav.PixelFormatCuda)),
		"time_base":    "1/" + strconv.Itoa(videoTimescale),
		"pixel_aspect": "1/1",
	})
	if err != nil {
		return nil, fmt.Errorf("scale_cuda source: %w", err)
	}
	frames := C.lg_frame_frames(rawFrame(in))
	if frames == nil {
		return nil, errors.New("scale_cuda: input frame is not a CUDA surface")
	}
	if ret := C.lg_buffersrc_frames(rawFilterContext(s.src), frames); ret < 0 {
		return nil, fmt.Errorf("scale_cuda source frames: %w", astiav.Error(ret))
	}
	if s.sink, err = s.graph.NewFilterContext(astiav.FindFilterByName("buffersink"), "out", nil); err != nil {
		return nil, fmt.Errorf("scale_cuda sink: %w", err)
	}
	outputs, inputs := astiav.AllocFilterInOut(), astiav.AllocFilterInOut()
	defer outputs.Free()
	defer inputs.Free()
	outputs.SetName("in")
	outputs.SetFilterContext(s.src)
	inputs.SetName("out")
	inputs.SetFilterContext(s.sink)
	spec := fmt.Sprintf("scale_cuda=w=%d:h=%d:interp_algo=bicubic", w, h)
	if err := s.graph.Parse(spec, inputs, outputs); err != nil {
		return nil, fmt.Errorf("%s: %w", spec, err)
	}
	if err := s.graph.Configure(); err != nil {
		return nil, fmt.Errorf("%s: %w", spec, err)
	}
	return s, nil
}

// scale returns a new CUDA frame of the rung's size; the caller frees it.
func (s *cudaScaler) scale(in *astiav.Frame) (*astiav.Frame, error) {
	if err := s.src.BuffersrcAddFrame(in, astiav.NewBuffersrcFlags(astiav.BuffersrcFlagKeepRef)); err != nil {
		return nil, fmt.Errorf("scale_cuda: %w", err)
	}
	out := astiav.AllocFrame()
	if err := s.sink.BuffersinkGetFrame(out, astiav.NewBuffersinkFlags()); err != nil {
		out.Free()
		return nil, fmt.Errorf("scale_cuda: %w", err)
	}
	return out, nil
}

func (s *cudaScaler) free() {
	if s.graph != nil {
		s.graph.Free()
	}
}

// setEncoderFrames hands NVENC the CUDA frame pool its input comes from.
func setEncoderFrames(cc *astiav.CodecContext, f *astiav.Frame) error {
	frames := C.lg_frame_frames(rawFrame(f))
	if frames == nil {
		return errors.New("input frame is not a CUDA surface")
	}
	if ret := C.lg_set_encoder_frames(rawCodecContext(cc), frames); ret < 0 {
		return astiav.Error(ret)
	}
	return nil
}

// codecWidth reads the width through the raw pointer (TestRawPointers).
func codecWidth(cc *astiav.CodecContext) int { return int(C.lg_codec_width(rawCodecContext(cc))) }
