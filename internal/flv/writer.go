package flv

import (
	"encoding/binary"
	"fmt"
	"io"
)

// Writer writes an FLV file or stream: the header, then tags, each
// followed by its PreviousTagSize.
type Writer struct {
	w   io.Writer
	buf []byte
	err error
}

// NewWriter writes the file header with h's stream flags and returns a
// Writer for the tags.
func NewWriter(w io.Writer, h Header) (*Writer, error) {
	b := []byte{'F', 'L', 'V', 1, 0, 0, 0, 0, headerLen, 0, 0, 0, 0}
	if h.Audio {
		b[4] |= 0x04
	}
	if h.Video {
		b[4] |= 0x01
	}
	if _, err := w.Write(b); err != nil {
		return nil, fmt.Errorf("flv: write header: %w", err)
	}
	return &Writer{w: w}, nil
}

// WriteTag writes one tag and its PreviousTagSize in a single Write.
func (w *Writer) WriteTag(t Tag) error {
	if w.err != nil {
		return w.err
	}
	switch {
	case t.Type > 0x1f:
		return fmt.Errorf("flv: write tag: type %d does not fit 5 bits: %w", t.Type, ErrUnsupported)
	case len(t.Data) > maxBodyLen:
		return fmt.Errorf("flv: write %s tag: body of %d bytes: %w", t.Type, len(t.Data), ErrTooLarge)
	case t.StreamID > 0xffffff:
		return fmt.Errorf("flv: write %s tag: stream id %d: %w", t.Type, t.StreamID, ErrTooLarge)
	}
	size := tagHeaderLen + len(t.Data)
	b := w.buf[:0]
	b = append(b, byte(t.Type), 0, 0, 0, 0, 0, 0, byte(t.Timestamp>>24), 0, 0, 0)
	putU24(b[1:], uint32(len(t.Data)))
	putU24(b[4:], t.Timestamp&0xffffff)
	putU24(b[8:], t.StreamID)
	b = append(b, t.Data...)
	b = binary.BigEndian.AppendUint32(b, uint32(size))
	if len(b) <= 1<<20 {
		w.buf = b // keep ordinary tags' buffer; let keyframe-sized ones go
	}
	if _, err := w.w.Write(b); err != nil {
		w.err = fmt.Errorf("flv: write %s tag: %w", t.Type, err)
		return w.err
	}
	return nil
}
