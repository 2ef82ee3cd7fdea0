// Package media holds the types that pass between the transcode engine and
// the packagers: renditions with their init segments, and media segments.
// It is CGO-free so the coordinator can use it without libav.
package media

// Rendition describes one output rendition; Init is its CMAF init segment.
type Rendition struct {
	Name       string
	Kind       string // "video" or "audio"
	Width      int
	Height     int
	FrameRate  float64
	Bitrate    int64  // target bits/s from the ladder
	Codec      string // RFC 6381 codec string
	Encoder    string // encoder that produced it ("libx264", "copy", ...)
	Timescale  uint32
	SampleRate int
	Channels   int
	Init       []byte
}

// Segment is one CMAF media segment of a rendition.
type Segment struct {
	Seq       uint64
	Start     uint64 // tfdt, in the rendition's timescale
	Duration  uint64 // in the rendition's timescale
	Timescale uint32
	Frames    int
	Data      []byte
}

// Sink receives a transcode's output in presentation order.
type Sink interface {
	// Rendition is called once per rendition before its first segment, and
	// again if its init segment changes.
	Rendition(r Rendition) error
	Segment(rendition string, s Segment) error
}
