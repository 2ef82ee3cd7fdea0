package queue

import (
	"encoding/json"
	"fmt"
	"time"
)

// Status is how a segment's task ended.
type Status string

// Task outcomes. A quarantined segment is a gap in every rendition: the
// stream goes on without it.
const (
	StatusDone        Status = "done"
	StatusQuarantined Status = "quarantined"
)

// Result announces one segment's outcome to the coordinator. The media
// itself is in the object store already; the result says where.
type Result struct {
	V       int    `json:"v"`
	TaskID  string `json:"task_id"` // TaskID(Stream, Session, Seq)
	Stream  string `json:"stream"`
	Session string `json:"session"`
	Seq     uint64 `json:"seq"`
	Attempt int    `json:"attempt"`
	Worker  string `json:"worker,omitempty"`
	Status  Status `json:"status"`
	Error   string `json:"error,omitempty"` // why a segment was quarantined
	// Start, End and Discontinuity are copied from the task so the
	// packager can place the segment without keeping the task.
	Start         int64             `json:"start"`
	End           int64             `json:"end"`
	Discontinuity bool              `json:"discontinuity,omitempty"`
	Renditions    []RenditionResult `json:"renditions,omitempty"`
	TranscodeTime time.Duration     `json:"transcode_time"`
	Fallbacks     int               `json:"fallbacks,omitempty"`
	Finished      time.Time         `json:"finished"`
}

// RenditionResult is one rendition's output for a segment.
type RenditionResult struct {
	Name       string  `json:"name"`
	Kind       string  `json:"kind"` // "video" or "audio"
	Codec      string  `json:"codec"`
	Width      int     `json:"width,omitempty"`
	Height     int     `json:"height,omitempty"`
	FrameRate  float64 `json:"frame_rate,omitempty"`
	Bitrate    int64   `json:"bitrate,omitempty"`
	SampleRate int     `json:"sample_rate,omitempty"`
	Channels   int     `json:"channels,omitempty"`
	Encoder    string  `json:"encoder"`
	InitKey    string  `json:"init_key"`
	InitHash   string  `json:"init_hash"` // SHA-256, hex
	Timescale  uint32  `json:"timescale"`
	// Segments are the media segments cut from the source segment, in order.
	Segments []SegmentRef `json:"segments"`
}

// SegmentRef is one stored media segment.
type SegmentRef struct {
	Key       string `json:"key"`
	Start     uint64 `json:"start"`    // tfdt, in Timescale
	Duration  uint64 `json:"duration"` // in Timescale
	Timescale uint32 `json:"timescale"`
	Frames    int    `json:"frames,omitempty"`
	Size      int    `json:"size"`
}

// Marshal encodes the result, setting its version.
func (r Result) Marshal() ([]byte, error) {
	r.V = PayloadVersion
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("queue: encode result %s: %w", r.TaskID, err)
	}
	return b, nil
}

// DecodeResult decodes a result; its errors wrap ErrBadPayload.
func DecodeResult(b []byte) (Result, error) {
	var r Result
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("%w: result: %w", ErrBadPayload, err)
	}
	if !ValidName(r.Stream) || !ValidName(r.Session) || r.TaskID != TaskID(r.Stream, r.Session, r.Seq) {
		return r, fmt.Errorf("%w: result %q does not name its segment", ErrBadPayload, r.TaskID)
	}
	return r, nil
}

// Heartbeat is a worker's report of itself, written every second.
type Heartbeat struct {
	ID       string
	Capacity int      // tasks it runs at once
	Busy     int      // tasks running now
	Encoders []string // encoders usable now, "nvenc/h264_nvenc", "software/libx264", ...
	// Active lists the tasks running now by queue id (AttemptID), so the
	// scheduler can resubmit them at once if the worker dies.
	Active   []string
	Draining bool // shutting down: finishing its tasks, taking no more
	Left     bool // shut down cleanly; what it did not finish is back in a queue
	LastSeen time.Time
}

// Free is the number of tasks the worker could start now.
func (h Heartbeat) Free() int { return max(0, h.Capacity-h.Busy) }
