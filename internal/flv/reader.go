package flv

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// DefaultMaxTagSize bounds the body of one tag a Reader accepts. The FLV
// field allows 16 MiB; no sane video frame gets near 8 MiB, and the bound
// caps what a hostile source can make one stream hold.
const DefaultMaxTagSize = 8 << 20

// maxHeaderSkip bounds the bytes a header's DataOffset may ask to skip:
// version 1 files have none, and a larger skip is a stall, not a header.
const maxHeaderSkip = 64 << 10

// Reader reads an FLV file or stream: the file header, then tags. It
// checks every PreviousTagSize, and its errors name the byte offset of the
// tag or header at fault. After an error other than io.EOF or an
// encrypted tag the stream is out of step, and every later call returns
// the same error.
type Reader struct {
	// MaxTagSize bounds a tag body; a larger one is ErrTooLarge. Zero
	// means DefaultMaxTagSize.
	MaxTagSize int

	r       io.Reader
	off     int64
	hdr     Header
	hdrDone bool
	err     error
	buf     [tagHeaderLen]byte
}

// NewReader returns a Reader of r. Reads are not buffered: wrap a network
// connection in a bufio.Reader.
func NewReader(r io.Reader) *Reader { return &Reader{r: r} }

// Offset returns the number of bytes consumed so far.
func (r *Reader) Offset() int64 { return r.off }

// Header reads and checks the file header on the first call and returns
// it.
func (r *Reader) Header() (Header, error) {
	if r.hdrDone {
		return r.hdr, nil
	}
	if r.err != nil {
		return Header{}, r.err
	}
	var b [headerLen]byte
	if err := r.readFull(b[:]); err != nil {
		return Header{}, r.fail(fmt.Errorf("flv: read header at offset 0: %w", noEOF(err)))
	}
	if b[0] != 'F' || b[1] != 'L' || b[2] != 'V' {
		return Header{}, r.fail(fmt.Errorf("flv: read header at offset 0: signature %q: %w", b[:3], ErrBadHeader))
	}
	if b[3] != 1 {
		return Header{}, r.fail(fmt.Errorf("flv: read header at offset 3: version %d: %w", b[3], ErrBadHeader))
	}
	dataOffset := binary.BigEndian.Uint32(b[5:])
	if dataOffset < headerLen || dataOffset-headerLen > maxHeaderSkip {
		return Header{}, r.fail(fmt.Errorf("flv: read header at offset 5: data offset %d: %w", dataOffset, ErrBadHeader))
	}
	if skip := int64(dataOffset - headerLen); skip > 0 {
		n, err := io.CopyN(io.Discard, r.r, skip)
		r.off += n
		if err != nil {
			return Header{}, r.fail(fmt.Errorf("flv: read header at offset %d: %w", r.off, noEOF(err)))
		}
	}
	var pts [4]byte
	if err := r.readFull(pts[:]); err != nil {
		return Header{}, r.fail(fmt.Errorf("flv: read header at offset %d: %w", dataOffset, noEOF(err)))
	}
	if v := binary.BigEndian.Uint32(pts[:]); v != 0 {
		return Header{}, r.fail(fmt.Errorf("flv: read header at offset %d: PreviousTagSize0 is %d, want 0: %w", dataOffset, v, ErrMalformed))
	}
	r.hdr = Header{Audio: b[4]&0x04 != 0, Video: b[4]&0x01 != 0}
	r.hdrDone = true
	return r.hdr, nil
}

// ReadTag reads the next tag. It returns io.EOF at a clean end between
// tags, ErrTruncated for a stream that ends inside one, ErrTooLarge for a
// body over MaxTagSize and ErrUnsupported for an encrypted tag, which it
// skips: the next call reads the tag after it.
func (r *Reader) ReadTag() (Tag, error) {
	if r.err != nil {
		return Tag{}, r.err
	}
	if _, err := r.Header(); err != nil {
		return Tag{}, err
	}
	start := r.off
	n, err := io.ReadFull(r.r, r.buf[:])
	r.off += int64(n)
	if err == io.EOF {
		r.err = io.EOF
		return Tag{}, io.EOF
	}
	if err != nil {
		return Tag{}, r.fail(fmt.Errorf("flv: read tag at offset %d: %w", start, noEOF(err)))
	}
	h := r.buf[:]
	size := int(u24(h[1:4]))
	t := Tag{
		Type:      TagType(h[0] & 0x1f),
		Timestamp: u24(h[4:7]) | uint32(h[7])<<24,
		StreamID:  u24(h[8:11]),
	}
	if max := r.maxTagSize(); size > max {
		return Tag{}, r.fail(fmt.Errorf("flv: read tag at offset %d: body of %d bytes, limit %d: %w", start, size, max, ErrTooLarge))
	}
	t.Data, err = readBody(r.r, size)
	r.off += int64(len(t.Data))
	if err != nil {
		return Tag{}, r.fail(fmt.Errorf("flv: read %s tag at offset %d: %w", t.Type, start, noEOF(err)))
	}
	var pts [4]byte
	if err := r.readFull(pts[:]); err != nil {
		return Tag{}, r.fail(fmt.Errorf("flv: read PreviousTagSize at offset %d: %w", r.off, noEOF(err)))
	}
	if got, want := binary.BigEndian.Uint32(pts[:]), uint32(tagHeaderLen+size); got != want {
		return Tag{}, r.fail(fmt.Errorf("flv: read PreviousTagSize at offset %d: %d, want %d: %w", r.off-4, got, want, ErrMalformed))
	}
	if h[0]&0x20 != 0 {
		return Tag{}, fmt.Errorf("flv: read %s tag at offset %d: encrypted: %w", t.Type, start, ErrUnsupported)
	}
	return t, nil
}

func (r *Reader) maxTagSize() int {
	if r.MaxTagSize > 0 {
		return min(r.MaxTagSize, maxBodyLen)
	}
	return DefaultMaxTagSize
}

func (r *Reader) readFull(b []byte) error {
	n, err := io.ReadFull(r.r, b)
	r.off += int64(n)
	return err
}

func (r *Reader) fail(err error) error {
	r.err = err
	return err
}

// noEOF maps an end of input inside a structure to ErrTruncated.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return ErrTruncated
	}
	return err
}

// readChunk is the most readBody allocates before bytes arrive: a body's
// length field cannot make it allocate more than twice what was sent.
const readChunk = 64 << 10

func readBody(r io.Reader, n int) ([]byte, error) {
	if n <= readChunk {
		b := make([]byte, n)
		m, err := io.ReadFull(r, b)
		return b[:m], err
	}
	b := make([]byte, 0, readChunk)
	for len(b) < n {
		step := min(n-len(b), max(len(b), readChunk))
		if cap(b)-len(b) < step {
			nb := make([]byte, len(b), len(b)+step)
			copy(nb, b)
			b = nb
		}
		m, err := io.ReadFull(r, b[len(b):len(b)+step])
		b = b[:len(b)+m]
		if err != nil {
			return b, err
		}
	}
	return b, nil
}
