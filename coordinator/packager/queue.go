package packager

import (
	"fmt"

	"github.com/livegrid/livegrid/internal/media"
	"github.com/livegrid/livegrid/internal/queue"
)

// Deliver hands over a segment's outcome as the scheduler reports it
// (its OnResult): Publish for a done segment, Gap for a quarantined one.
func (p *Packager) Deliver(r queue.Result) error {
	switch r.Status {
	case queue.StatusDone:
		return p.Publish(FromQueue(r))
	case queue.StatusQuarantined:
		return p.Gap(r.Stream, r.Session, r.Seq)
	}
	return fmt.Errorf("packager: result %s has status %q: %w", r.TaskID, r.Status, ErrBadResult)
}

// FromQueue converts a worker's result, whose media is in the store, to
// a Result.
func FromQueue(r queue.Result) Result {
	out := Result{Stream: r.Stream, Session: r.Session, Seq: r.Seq, Discontinuity: r.Discontinuity}
	for _, rr := range r.Renditions {
		o := Output{
			Rendition: media.Rendition{
				Name: rr.Name, Kind: rr.Kind, Width: rr.Width, Height: rr.Height, FrameRate: rr.FrameRate,
				Bitrate: rr.Bitrate, Codec: rr.Codec, Encoder: rr.Encoder, Timescale: rr.Timescale,
				SampleRate: rr.SampleRate, Channels: rr.Channels,
			},
			InitKey: rr.InitKey, InitHash: rr.InitHash,
		}
		for _, s := range rr.Segments {
			o.Segments = append(o.Segments, Segment{
				Segment: media.Segment{Start: s.Start, Duration: s.Duration, Timescale: s.Timescale, Frames: s.Frames},
				Key:     s.Key,
			})
		}
		out.Renditions = append(out.Renditions, o)
	}
	return out
}
