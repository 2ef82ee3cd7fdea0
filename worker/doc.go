// Package worker is livegrid's worker role: it runs "transcode:segment"
// tasks from its own asynq queue and the shared one, fetching each source
// segment, transcoding it (worker/transcode holds the engine; a stream's
// segments share a live session whose encoders stay open), writing the
// renditions to the object store and announcing the result, and it
// heartbeats to Redis so the scheduler can route to it and notice when it
// is gone.
package worker
