// Package edge is livegrid's viewer-facing relay.
package edge
