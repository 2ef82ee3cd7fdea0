package cmaf

import "fmt"

// RewriteSampleEntry renames, in place, every sample entry of type from in
// the init segment's stsd boxes to type to, e.g. hev1 to hvc1 for Apple
// players. Both must be four bytes; the caller answers for the codec
// configuration fitting the new type (hvc1 wants parameter sets in hvcC).
func RewriteSampleEntry(init []byte, from, to string) error {
	if len(from) != 4 || len(to) != 4 {
		return fmt.Errorf("cmaf: rewrite sample entry %q to %q: types must be 4 bytes: %w", from, to, ErrMalformed)
	}
	n, err := rewriteSampleEntry(init, from, to)
	if err != nil {
		return fmt.Errorf("cmaf: rewrite sample entry %q to %q: %w", from, to, err)
	}
	if n == 0 {
		return fmt.Errorf("cmaf: rewrite sample entry %q to %q: %w", from, to, ErrNoSampleEntry)
	}
	return nil
}

func rewriteSampleEntry(init []byte, from, to string) (int, error) {
	moov, err := mustChild(init, "moov")
	if err != nil {
		return 0, err
	}
	n := 0
	err = walkBoxes(moov, func(bx Box) error {
		if bx.Type != "trak" {
			return nil
		}
		stsd, err := findPath(payload(moov, bx), "mdia", "minf", "stbl", "stsd")
		if err != nil {
			return err
		}
		_, _, entries, err := fullBox(stsd, "stsd")
		if err != nil {
			return err
		}
		if len(entries) < 4 {
			return fmt.Errorf("stsd entry_count: %w", ErrTruncated)
		}
		entries = entries[4:]
		// payload slices alias init, so writing the type bytes through
		// them edits the caller's buffer.
		return walkBoxes(entries, func(e Box) error {
			if e.Type == from {
				copy(entries[e.Offset+4:e.Offset+8], to)
				n++
			}
			return nil
		})
	})
	return n, err
}
