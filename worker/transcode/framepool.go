//go:build cgo

package transcode

/*
#cgo pkg-config: libavutil
#include <libavutil/frame.h>
#include <malloc.h>
static int lg_frame_writable(void *f) { return av_frame_is_writable((AVFrame *)f); }
*/
import "C"

import (
	"fmt"

	"github.com/asticode/go-astiav"
)

// framePool recycles a rung's scaled pictures. Allocating a fresh 1-3 MB
// picture per frame per rung made the kernel zero pages all day long (a
// quarter of the CPU in a 1080p ladder); a picture is reused once nobody
// else (a cascaded rung, an encoder that keeps references) holds it.
type framePool struct {
	w, h   int
	pf     astiav.PixelFormat
	frames []*astiav.Frame
}

const framePoolSize = 8

// get returns a writable picture of the pool's size and format.
func (p *framePool) get() (*astiav.Frame, error) {
	for _, f := range p.frames {
		if C.lg_frame_writable(f.UnsafePointer()) != 0 {
			return f, nil
		}
	}
	f := astiav.AllocFrame()
	f.SetWidth(p.w)
	f.SetHeight(p.h)
	f.SetPixelFormat(p.pf)
	if err := f.AllocBuffer(0); err != nil {
		f.Free()
		return nil, fmt.Errorf("allocating %dx%d picture: %w", p.w, p.h, err)
	}
	if len(p.frames) < framePoolSize {
		p.frames = append(p.frames, f)
	}
	return f, nil
}

// owns reports whether f belongs to the pool (and must not be freed).
func (p *framePool) owns(f *astiav.Frame) bool {
	for _, g := range p.frames {
		if g == f {
			return true
		}
	}
	return false
}

func (p *framePool) free() {
	for _, f := range p.frames {
		f.Free()
	}
	p.frames = nil
}

// ReleaseMemory hands the C heap's free memory back to the OS. libav and
// the encoders allocate from many threads, so glibc keeps free memory in
// per-thread arenas; a worker calls this when it goes idle.
func ReleaseMemory() { C.malloc_trim(0) }
