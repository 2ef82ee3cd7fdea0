//go:build cgo

package transcode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/asticode/go-astiav"
)

// input is an open demuxer and its chosen streams.
type input struct {
	fc    *astiav.FormatContext
	ioc   *astiav.IOContext
	intr  astiav.IOInterrupter
	stop  func() bool
	video *astiav.Stream
	audio *astiav.Stream
}

// avseekSize is libav's AVSEEK_SIZE: "tell me the stream size".
const avseekSize = 0x10000

func openInput(ctx context.Context, src Source) (_ *input, err error) {
	if src.URL == "" && len(src.Data) == 0 {
		return nil, fmt.Errorf("open input: %w: empty input", ErrInvalidInput)
	}
	in := &input{fc: astiav.AllocFormatContext()}
	if in.fc == nil {
		return nil, errors.New("open input: allocating format context")
	}
	defer func() {
		if err != nil {
			in.close()
		}
	}()
	in.intr = in.fc.SetInterruptCallback()
	in.stop = context.AfterFunc(ctx, in.intr.Interrupt)

	var ifmt *astiav.InputFormat
	if src.Format != "" {
		if ifmt = astiav.FindInputFormat(src.Format); ifmt == nil {
			return nil, fmt.Errorf("open input: %w: unknown format %q", ErrInvalidInput, src.Format)
		}
	}
	url := src.URL
	if src.Data != nil {
		r := &memReader{b: src.Data}
		if in.ioc, err = astiav.AllocIOContext(64<<10, false, r.read, r.seek, nil); err != nil {
			return nil, fmt.Errorf("open input: %w", err)
		}
		in.fc.SetPb(in.ioc)
		url = ""
	}
	opts := astiav.NewDictionary()
	defer opts.Free()
	if strings.Contains(url, "://") {
		// Network inputs must not hang a worker forever.
		_ = opts.Set("rw_timeout", "10000000", 0)
	}
	if err := in.fc.OpenInput(url, ifmt, opts); err != nil {
		in.fc.Free()
		in.fc = nil // OpenInput frees the context on failure
		return nil, fmt.Errorf("open input %s: %w: %w", src, ErrInvalidInput, err)
	}
	if err := in.fc.FindStreamInfo(nil); err != nil {
		return nil, fmt.Errorf("open input %s: reading stream info: %w: %w", src, ErrInvalidInput, err)
	}
	for _, s := range in.fc.Streams() {
		par := s.CodecParameters()
		switch par.MediaType() {
		case astiav.MediaTypeVideo:
			if in.video == nil {
				in.video = s
			}
		case astiav.MediaTypeAudio:
			if in.audio == nil && par.SampleRate() > 0 {
				in.audio = s
			}
		}
	}
	if in.video == nil {
		return nil, fmt.Errorf("open input %s: %w", src, ErrNoVideo)
	}
	vpar := in.video.CodecParameters()
	if astiav.FindDecoder(vpar.CodecID()) == nil {
		return nil, fmt.Errorf("open input %s: %w: no decoder for video codec %q", src, ErrUnsupportedCodec, vpar.CodecID().Name())
	}
	if vpar.Width() <= 0 || vpar.Height() <= 0 {
		return nil, fmt.Errorf("open input %s: %w: video stream %s has no picture size", src, ErrInvalidInput, vpar.CodecID().Name())
	}
	return in, nil
}

func (in *input) close() {
	if in.stop != nil {
		in.stop()
	}
	if in.fc != nil {
		in.fc.CloseInput()
		in.fc.Free()
	}
	if in.ioc != nil {
		in.ioc.Free()
	}
}

// memReader serves a byte slice to libav's custom IO.
type memReader struct {
	b   []byte
	off int64
}

func (r *memReader) read(p []byte) (int, error) {
	if r.off >= int64(len(r.b)) {
		return 0, astiav.ErrEof
	}
	n := copy(p, r.b[r.off:])
	r.off += int64(n)
	return n, nil
}

func (r *memReader) seek(offset int64, whence int) (int64, error) {
	if whence&avseekSize != 0 {
		return int64(len(r.b)), nil
	}
	var abs int64
	switch whence &^ 0x20000 { // AVSEEK_FORCE
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = r.off + offset
	case io.SeekEnd:
		abs = int64(len(r.b)) + offset
	default:
		return 0, astiav.ErrEio
	}
	if abs < 0 {
		return 0, astiav.ErrEio
	}
	r.off = abs
	return abs, nil
}
