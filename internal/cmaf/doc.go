// Package cmaf reads and writes the CMAF / fragmented-MP4 pieces livegrid
// needs: single-track init segments, media segments whose
// baseMediaDecodeTime is the source timestamp, codec strings for playlists
// and Annex B to length-prefixed NAL conversion.
//
// Every parser here takes untrusted bytes: it must not panic, loop forever
// or allocate in proportion to a length field it has not checked against
// the bytes actually present.
package cmaf

import "errors"

var (
	// ErrTruncated means a box, descriptor or table runs past the end of
	// the bytes that hold it.
	ErrTruncated = errors.New("cmaf: truncated")
	// ErrMalformed means the bytes are present but do not form a valid
	// structure (a box smaller than its header, a required box missing).
	ErrMalformed = errors.New("cmaf: malformed")
	// ErrNotFragmented means an init segment has no mvex/trex for its track,
	// or a media segment has no moof.
	ErrNotFragmented = errors.New("cmaf: not fragmented")
	// ErrNoTrack means an init segment has no audio or video track.
	ErrNoTrack = errors.New("cmaf: no track")
	// ErrUnsupportedCodec means the sample entry or its codec configuration
	// is one this package cannot describe.
	ErrUnsupportedCodec = errors.New("cmaf: unsupported codec")
	// ErrNoSampleEntry means RewriteSampleEntry found no sample entry of the
	// requested type.
	ErrNoSampleEntry = errors.New("cmaf: no such sample entry")
	// ErrNoSamples means WriteMediaSegment was asked for a segment with no
	// samples, which no player can use.
	ErrNoSamples = errors.New("cmaf: no samples")
)
