package queue

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/livegrid/livegrid/profiles"
)

// Task is the payload of a "transcode:segment" task: one GOP-aligned source
// segment of a stream and everything a worker needs to transcode it.
type Task struct {
	V       int    `json:"v"` // PayloadVersion
	Stream  string `json:"stream"`
	Session string `json:"session"` // one publish of the stream
	Seq     uint64 `json:"seq"`     // source segment number within the stream
	Source  Source `json:"source"`
	Ladder  Ladder `json:"ladder"`
	// SegmentDuration is the output segment target.
	SegmentDuration time.Duration `json:"segment_duration"`
	// Start and End are the source presentation times (90 kHz) of the
	// segment's first keyframe and of the next segment's; End is -1 when
	// unknown.
	Start         int64 `json:"start"`
	End           int64 `json:"end"`
	Discontinuity bool  `json:"discontinuity,omitempty"`
	// Attempt counts the scheduler's resubmissions of a lost task (0 first).
	Attempt int `json:"attempt,omitempty"`
	// PriorFailures counts failures in queue runs that came before this
	// task's own: those of earlier attempts or of a copy moved off a dead
	// worker's queue. A segment is quarantined after two failures in all.
	PriorFailures int       `json:"prior_failures,omitempty"`
	EnqueuedAt    time.Time `json:"enqueued_at"`
	// Deadline is when this attempt expires: past it, the scheduler, not
	// the worker, decides between a resubmission and a gap. Zero: none.
	Deadline time.Time `json:"deadline,omitzero"`
}

// Source says where a source segment is: an object-store key, an origin
// URL, or the bytes themselves for a small segment. Data wins over Key,
// and Key over URL.
type Source struct {
	Key    string `json:"key,omitempty"`
	URL    string `json:"url,omitempty"`
	Data   []byte `json:"data,omitempty"`
	Format string `json:"format"` // demuxer name: "flv"
	Size   int    `json:"size,omitempty"`
}

// Ladder names the ABR ladder of a task: the whole ladder file, so a worker
// transcodes exactly what the coordinator validated, or a reference to a
// builtin ladder ("builtin:default").
type Ladder struct {
	Profile string `json:"profile"`
	YAML    string `json:"yaml,omitempty"`
	Ref     string `json:"ref,omitempty"`
}

// Load parses the ladder. Only builtin references are followed: a file
// path in a task would let a queue writer read the worker's disk.
func (l Ladder) Load() (*profiles.Ladder, error) {
	switch {
	case l.YAML != "":
		lad, err := profiles.Parse([]byte(l.YAML), "task ladder "+l.Profile)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadPayload, err)
		}
		return lad, nil
	case strings.HasPrefix(l.Ref, "builtin:"):
		lad, err := profiles.Open(l.Ref)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadPayload, err)
		}
		return lad, nil
	}
	return nil, fmt.Errorf("%w: ladder %q has neither YAML nor a builtin: reference", ErrBadPayload, l.Profile)
}

// ID is the task's segment id, TaskID(Stream, Session, Seq).
func (t *Task) ID() string { return TaskID(t.Stream, t.Session, t.Seq) }

// maxSegmentDuration bounds SegmentDuration; more is a broken coordinator.
const maxSegmentDuration = time.Minute

// Validate checks a task; its errors wrap ErrBadPayload and name the field.
func (t *Task) Validate() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: '%s' %s", ErrBadPayload, field, fmt.Sprintf(format, args...))
	}
	switch {
	case t.V < 1 || t.V > PayloadVersion:
		return bad("v", "is %d; this build reads version 1..%d", t.V, PayloadVersion)
	case !ValidName(t.Stream):
		return bad("stream", "%q must be 1..128 characters of [A-Za-z0-9._-]", t.Stream)
	case !ValidName(t.Session):
		return bad("session", "%q must be 1..128 characters of [A-Za-z0-9._-]", t.Session)
	case len(t.Source.Data) == 0 && t.Source.Key == "" && t.Source.URL == "":
		return bad("source", "names no key, URL or data")
	case !validFormat(t.Source.Format):
		return bad("source.format", "%q is not a demuxer name", t.Source.Format)
	case t.Ladder.YAML == "" && t.Ladder.Ref == "":
		return bad("ladder", "has neither yaml nor ref")
	case t.SegmentDuration <= 0 || t.SegmentDuration > maxSegmentDuration:
		return bad("segment_duration", "%v must be between 0 and %v", t.SegmentDuration, maxSegmentDuration)
	case t.End < -1 || t.End >= 0 && t.End <= t.Start:
		return bad("end", "%d must be -1 or after start %d", t.End, t.Start)
	case t.Attempt < 0 || t.PriorFailures < 0:
		return bad("attempt", "counts must not be negative")
	}
	if t.Source.URL != "" {
		u, err := url.Parse(t.Source.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return bad("source.url", "%q must be an http(s) URL", t.Source.URL)
		}
	}
	return nil
}

func validFormat(f string) bool {
	if f == "" || len(f) > 32 {
		return false
	}
	for _, c := range f {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// Marshal encodes the task, setting its version.
func (t Task) Marshal() ([]byte, error) {
	t.V = PayloadVersion
	b, err := json.Marshal(t)
	if err != nil {
		return nil, fmt.Errorf("queue: encode task %s: %w", t.ID(), err)
	}
	return b, nil
}

// DecodeTask decodes and validates a payload. Its errors wrap ErrBadPayload.
// Unknown fields are ignored so that a newer coordinator's minor additions
// do not stop older workers during a rolling upgrade; a format change that
// matters bumps PayloadVersion.
func DecodeTask(b []byte) (Task, error) {
	var t Task
	if err := json.Unmarshal(b, &t); err != nil {
		return t, fmt.Errorf("%w: %w", ErrBadPayload, err)
	}
	if err := t.Validate(); err != nil {
		return t, err
	}
	return t, nil
}

// Job is one enqueue request: a task and how the queue should deliver it.
type Job struct {
	ID       string // AttemptID of the task
	Queue    string
	Task     Task
	MaxRetry int           // re-runs after a failure or a lost worker
	Timeout  time.Duration // per run
	Deadline time.Time     // after which no run starts or continues
}

// QueueStats is one queue's depth.
type QueueStats struct {
	Queue     string
	Pending   int
	Active    int
	Scheduled int
	Retry     int
	Archived  int // quarantined tasks kept for inspection
	Latency   time.Duration
}
