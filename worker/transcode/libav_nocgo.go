//go:build !cgo

package transcode

// HasLibav reports whether this build links libav and can transcode; a
// CGO_ENABLED=0 build (a static coordinator or edge) cannot.
const HasLibav = false
