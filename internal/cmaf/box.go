package cmaf

import (
	"encoding/binary"
	"fmt"
)

// Box is one ISO BMFF box found by ReadBoxes. Offset is relative to the
// slice that was walked; Size includes the header.
type Box struct {
	Type       string
	Offset     int64
	Size       int64
	HeaderSize int
}

// ReadBoxes returns the boxes that follow each other in b, without
// descending into them. A size of 0 means the box runs to the end of b; a
// size of 1 means a 64-bit largesize follows the type.
func ReadBoxes(b []byte) ([]Box, error) {
	boxes, err := readBoxes(b)
	if err != nil {
		return nil, fmt.Errorf("cmaf: read boxes: %w", err)
	}
	return boxes, nil
}

// readBoxes is ReadBoxes for the parsers, whose own errors say "cmaf".
func readBoxes(b []byte) ([]Box, error) {
	var boxes []Box
	err := walkBoxes(b, func(bx Box) error {
		boxes = append(boxes, bx)
		return nil
	})
	return boxes, err
}

// walkBoxes calls fn for each box in b in order, stopping at the first
// error. It is the allocation-free core of ReadBoxes.
func walkBoxes(b []byte, fn func(Box) error) error {
	var off int64
	n := int64(len(b))
	for off < n {
		bx, err := readBoxHeader(b[off:])
		if err != nil {
			return fmt.Errorf("box at offset %d: %w", off, err)
		}
		bx.Offset = off
		if err := fn(bx); err != nil {
			return err
		}
		off += bx.Size
	}
	return nil
}

// readBoxHeader reads the header of the box starting at b[0]; the returned
// Size is validated against len(b).
func readBoxHeader(b []byte) (Box, error) {
	if len(b) < 8 {
		return Box{}, fmt.Errorf("box header needs 8 bytes, have %d: %w", len(b), ErrTruncated)
	}
	size := int64(binary.BigEndian.Uint32(b))
	bx := Box{Type: string(b[4:8]), HeaderSize: 8}
	switch size {
	case 0:
		size = int64(len(b))
	case 1:
		if len(b) < 16 {
			return Box{}, fmt.Errorf("%q largesize needs 16 bytes, have %d: %w", bx.Type, len(b), ErrTruncated)
		}
		large := binary.BigEndian.Uint64(b[8:])
		if large > uint64(len(b)) {
			return Box{}, fmt.Errorf("%q size %d exceeds %d available bytes: %w", bx.Type, large, len(b), ErrTruncated)
		}
		size = int64(large)
		bx.HeaderSize = 16
	}
	if bx.Type == "uuid" {
		bx.HeaderSize += 16
	}
	if size < int64(bx.HeaderSize) {
		if int64(len(b)) < int64(bx.HeaderSize) {
			return Box{}, fmt.Errorf("%q header needs %d bytes, have %d: %w", bx.Type, bx.HeaderSize, len(b), ErrTruncated)
		}
		return Box{}, fmt.Errorf("%q size %d smaller than its %d-byte header: %w", bx.Type, size, bx.HeaderSize, ErrMalformed)
	}
	if size > int64(len(b)) {
		return Box{}, fmt.Errorf("%q size %d exceeds %d available bytes: %w", bx.Type, size, len(b), ErrTruncated)
	}
	bx.Size = size
	return bx, nil
}

// payload returns the bytes of bx after its header, bx having been found in b.
func payload(b []byte, bx Box) []byte {
	return b[bx.Offset+int64(bx.HeaderSize) : bx.Offset+bx.Size]
}

// child returns the payload of the first box of type typ in b. found is
// false when there is none; err is set only when b is not a box sequence.
func child(b []byte, typ string) (p []byte, found bool, err error) {
	err = walkBoxes(b, func(bx Box) error {
		if bx.Type == typ {
			p, found = payload(b, bx), true
			return errStop
		}
		return nil
	})
	if err == errStop {
		err = nil
	}
	return p, found, err
}

// mustChild is child for boxes the format requires.
func mustChild(b []byte, typ string) ([]byte, error) {
	p, found, err := child(b, typ)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("no %q box: %w", typ, ErrMalformed)
	}
	return p, nil
}

// errStop ends a walk early; it never leaves this package.
var errStop = stopError{}

type stopError struct{}

func (stopError) Error() string { return "cmaf: stop walk" }

// fullBox splits a FullBox payload into version, flags and the rest.
func fullBox(p []byte, typ string) (version uint8, flags uint32, rest []byte, err error) {
	if len(p) < 4 {
		return 0, 0, nil, fmt.Errorf("%q needs 4 bytes of version and flags, have %d: %w", typ, len(p), ErrTruncated)
	}
	return p[0], binary.BigEndian.Uint32(p) & 0xFFFFFF, p[4:], nil
}
