package transcode

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/livegrid/livegrid/internal/media"
	"github.com/livegrid/livegrid/profiles"
)

// Source names what to transcode: a file path or URL, or bytes in memory
// (a GOP-aligned segment handed over by the coordinator).
type Source struct {
	URL    string
	Data   []byte
	Format string // demuxer name hint for Data ("flv", "mpegts"); empty probes
}

func (s Source) String() string {
	if s.URL != "" {
		return s.URL
	}
	return fmt.Sprintf("%d bytes in memory", len(s.Data))
}

// Options configures an Engine.
type Options struct {
	Chain  *Chain  // encoder chain; nil makes a default one
	Faults *Faults // injected encoder failures (tests)
	Log    *slog.Logger
	// Threads per rung encoder; 0 splits the machine by each rung's pixels.
	Threads int
	// Encoder forces one kind for every rung ("" or "auto" keeps each rung's preference).
	Encoder profiles.EncoderKind
}

// RenditionInfo, Segment and Sink are the engine's output types.
type (
	RenditionInfo = media.Rendition
	Segment       = media.Segment
	Sink          = media.Sink
)

// FileOptions tunes TranscodeFile.
type FileOptions struct {
	SegmentDuration time.Duration // default 2s
	// Progress, if set, is called after each chunk with the media time done
	// and the source duration (0 if unknown).
	Progress func(done, total time.Duration)
}

// Summary reports what a transcode did.
type Summary struct {
	Source     string
	Duration   time.Duration // media time transcoded
	Frames     int           // frames encoded into the fullest rung
	Segments   int           // per rendition
	Renditions []RenditionInfo
	Fallbacks  int
}

const audioRendition = "audio"

// maxDimension bounds output sizes; a wild sample aspect ratio would
// otherwise ask the encoder for a picture no player can show.
const maxDimension = 8192

// Faults injects encoder failures; tests use it to prove the fallback chain
// on machines without GPUs. Nil functions inject nothing.
type Faults struct {
	// Open is called before an encoder opens; an error fails the open.
	Open func(c Candidate) error
	// Encode is called before frame n (0-based) is sent; an error fails the
	// encoder mid-stream.
	Encode func(c Candidate, n int) error
}

// SegmentOptions tunes TranscodeSegment.
type SegmentOptions struct {
	SegmentDuration time.Duration // output segment target; default 2s
	// End is the source presentation time (90 kHz) where the next source
	// segment starts, so the last output segment gets an exact duration;
	// negative means unknown.
	End int64
}

// SegmentResult is the whole ladder for one source segment.
type SegmentResult struct {
	Renditions []RenditionResult
	Fallbacks  int
}

// RenditionResult is one rendition's init segment and media segments.
type RenditionResult struct {
	RenditionInfo
	Segments []Segment
}

// LiveOptions configures a live session (Engine.OpenLive).
type LiveOptions struct {
	SegmentDuration time.Duration // output segment target; default 2s
}

// LiveSegment is one source segment of a live session's stream.
type LiveSegment struct {
	// Seq numbers the stream's source segments. A segment that does not
	// follow the session's previous one (a gap, a repeat, an older one)
	// is still transcoded on its own; only the audio starts over.
	Seq    uint64
	Source Source
	// End is the source presentation time (90 kHz) where the next source
	// segment starts, so the last output segment gets an exact duration;
	// negative means unknown.
	End int64
	// Discontinuity marks a segment that does not continue the previous
	// one's timeline (a publisher reconnect).
	Discontinuity bool
}

// SchedulerProcs is the GOMAXPROCS for a process whose work is transcoding.
// The heavy lifting runs on libav's own threads, outside Go's scheduler; a
// full set of Ps only adds threads spinning for Go work that is not there
// (measured on 2 cores: 6% less CPU and a third fewer context switches with
// 1 P than with 2, for the same output).
func SchedulerProcs(cpus int) int { return max(1, cpus/4) }
