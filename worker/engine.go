package worker

import (
	"context"
	"errors"
	"fmt"

	"github.com/livegrid/livegrid/worker/transcode"
)

// EngineTranscoder runs segments on the transcode engine.
type EngineTranscoder struct {
	Engine *transcode.Engine
}

var (
	_ transcoder    = (*EngineTranscoder)(nil)
	_ encoderLister = (*EngineTranscoder)(nil)
)

// TranscodeSegment transcodes one source segment held in memory. Input the
// engine cannot use at all is marked ErrBadSource.
func (e *EngineTranscoder) TranscodeSegment(ctx context.Context, in SegmentInput) (*SegmentOutput, error) {
	res, err := e.Engine.TranscodeSegment(ctx, transcode.Source{Data: in.Data, Format: in.Format}, in.Ladder,
		transcode.SegmentOptions{SegmentDuration: in.SegmentDuration, End: in.End})
	if err != nil {
		if errors.Is(err, transcode.ErrInvalidInput) || errors.Is(err, transcode.ErrUnsupportedCodec) || errors.Is(err, transcode.ErrNoVideo) {
			return nil, fmt.Errorf("%w: %w", ErrBadSource, err)
		}
		return nil, err
	}
	out := &SegmentOutput{Fallbacks: res.Fallbacks, Renditions: make([]RenditionOutput, len(res.Renditions))}
	for i, r := range res.Renditions {
		out.Renditions[i] = RenditionOutput{Rendition: r.RenditionInfo, Segments: r.Segments}
	}
	return out, nil
}

// UsableEncoders lists the encoders the engine's chain can open, as
// "kind/encoder".
func (e *EngineTranscoder) UsableEncoders() []string {
	var out []string
	for _, p := range e.Engine.Chain().ProbeAll() {
		if p.Usable {
			out = append(out, string(p.Kind)+"/"+p.Encoder)
		}
	}
	return out
}
