// Package queue holds what the coordinator and the workers agree on about
// transcode work: the "transcode:segment" task payload, its result, worker
// heartbeats, the names of queues and Redis keys, and the two Redis side
// channels that travel beside the task queue (the worker registry and the
// per-stream result log). It is CGO-free and does not import asynq.
package queue

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// TypeTranscodeSegment is the task type of one source segment to transcode.
const TypeTranscodeSegment = "transcode:segment"

// SharedQueue is the queue every worker takes from; a worker's own queue
// (WorkerQueue) carries the segments of the streams it holds warm.
const SharedQueue = "transcode"

// PayloadVersion is the payload format this package writes; a worker refuses
// newer payloads rather than misread them.
const PayloadVersion = 1

// Sentinel errors.
var (
	// ErrBadPayload marks a payload that cannot be decoded or fails
	// validation: a poison task, never worth a retry.
	ErrBadPayload = errors.New("queue: bad task payload")
	// ErrDuplicate means a task with the same id was already enqueued.
	ErrDuplicate = errors.New("queue: task already enqueued")
)

// WorkerQueue is the name of worker id's own queue.
func WorkerQueue(id string) string { return "worker:" + id }

// TaskID names the task of one source segment. It depends only on the
// segment's identity, so enqueueing the same segment twice is a no-op.
// Names are checked by ValidName, which keeps ':' out of them, so the id
// is unambiguous.
func TaskID(stream, session string, seq uint64) string {
	return "seg:" + stream + ":" + session + ":" + strconv.FormatUint(seq, 10)
}

// AttemptID is the queue's id for attempt n of a segment's task: the
// scheduler resubmits a segment whose task was lost under a new id, since the
// old one may still be held by the queue.
func AttemptID(taskID string, attempt int) string {
	if attempt <= 0 {
		return taskID
	}
	return taskID + ":r" + strconv.Itoa(attempt)
}

// ValidName reports whether s may name a stream, session or worker: 1..128
// bytes of [A-Za-z0-9._-], not starting with '.'. Names become object-store
// keys, queue names and Redis keys, so nothing that could climb a path or
// split an id is allowed.
func ValidName(s string) bool {
	if s == "" || len(s) > 128 || s[0] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}

// Object-store layout of a transcoded stream. Init segments are keyed by
// their content hash, so writing one twice is harmless and a change of
// encoder mid-stream gets a new key.

// RenditionPrefix is the folder of one rendition of a session.
func RenditionPrefix(stream, session, rendition string) string {
	return "live/" + stream + "/" + session + "/" + rendition + "/"
}

// InitKey is the key of a rendition's init segment with the given SHA-256
// (hex); the first 16 hex digits name it.
func InitKey(stream, session, rendition, sha256Hex string) string {
	h := sha256Hex
	if len(h) > 16 {
		h = h[:16]
	}
	return RenditionPrefix(stream, session, rendition) + "init-" + h + ".mp4"
}

// SegmentKey is the key of output segment part of source segment seq. A
// source segment longer than the target duration gives several parts.
func SegmentKey(stream, session, rendition string, seq uint64, part int) string {
	return fmt.Sprintf("%s%08d-%d.m4s", RenditionPrefix(stream, session, rendition), seq, part)
}

// Redis keys of the side channels. Keys of one stream share the hash tag
// {stream} so the result log's script stays on one Redis Cluster slot.
const (
	keyPrefix  = "livegrid:"
	workersKey = keyPrefix + "workers"
)

// HeartbeatKey is the hash holding worker id's last heartbeat.
func HeartbeatKey(id string) string { return keyPrefix + "worker:" + id }

// ResultsKey is the Redis stream carrying the results of stream.
func ResultsKey(stream string) string { return resultsPrefix + stream + "}" }

const resultsPrefix = keyPrefix + "results:{"

// DoneKey marks a segment whose result was published.
func DoneKey(stream, taskID string) string {
	return keyPrefix + "done:{" + stream + "}:" + strings.TrimPrefix(taskID, "seg:")
}
