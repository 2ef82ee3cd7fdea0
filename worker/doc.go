// Package worker runs livegrid's queue task handlers; the transcode engine
// itself lives in worker/transcode.
package worker
