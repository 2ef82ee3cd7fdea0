// Package coordinator is livegrid's control plane and origin: ingest, hub,
// segmenter, scheduler, packager and management API.
package coordinator
