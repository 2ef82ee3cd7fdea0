//go:build cgo

package transcode

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"

	"github.com/asticode/go-astiav"
)

// Timescales of the CMAF tracks livegrid writes.
const videoTimescale = 90000

// buildInit asks libav's mp4 muxer for a CMAF init segment (ftyp+moov with
// mvex) for one track described by par. libav knows how to write avcC, hvcC,
// av1C and esds; the media segments are written by package cmaf.
func buildInit(par *astiav.CodecParameters, timescale int) (_ []byte, err error) {
	var buf bytes.Buffer
	w := func(b []byte) (int, error) { return buf.Write(b) }
	ioc, err := astiav.AllocIOContext(4096, true, nil, nil, w)
	if err != nil {
		return nil, fmt.Errorf("init segment: %w", err)
	}
	defer ioc.Free()
	fc, err := astiav.AllocOutputFormatContext(nil, "mp4", "")
	if err != nil {
		return nil, fmt.Errorf("init segment: %w", err)
	}
	defer fc.Free()
	fc.SetPb(ioc)
	s := fc.NewStream(nil)
	if s == nil {
		return nil, errors.New("init segment: allocating stream")
	}
	if err := par.Copy(s.CodecParameters()); err != nil {
		return nil, fmt.Errorf("init segment: copying codec parameters: %w", err)
	}
	s.CodecParameters().SetCodecTag(0)
	if par.CodecID() == astiav.CodecIDHevc {
		// hvc1 (parameter sets only in the sample entry) is what Apple players need.
		s.CodecParameters().SetCodecTag(astiav.CodecTag(mkTag('h', 'v', 'c', '1')))
	}
	s.SetTimeBase(astiav.NewRational(1, timescale))
	opts := astiav.NewDictionary()
	defer opts.Free()
	_ = opts.Set("movflags", "empty_moov+default_base_moof+cmaf+skip_trailer", 0)
	if par.MediaType() == astiav.MediaTypeVideo {
		_ = opts.Set("video_track_timescale", strconv.Itoa(timescale), 0)
	}
	if err := fc.WriteHeader(opts); err != nil {
		return nil, fmt.Errorf("init segment: writing header: %w", err)
	}
	ioc.Flush()
	n := buf.Len()
	// The trailer frees the muxer's private state; its bytes are not wanted.
	if err := fc.WriteTrailer(); err != nil {
		return nil, fmt.Errorf("init segment: closing muxer: %w", err)
	}
	return bytes.Clone(buf.Bytes()[:n]), nil
}

func mkTag(a, b, c, d byte) uint32 {
	return uint32(a) | uint32(b)<<8 | uint32(c)<<16 | uint32(d)<<24
}
