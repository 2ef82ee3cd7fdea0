// Package transcode is livegrid's transcode engine: it decodes a source once,
// scales it to every rung of an ABR ladder and encodes the rungs in parallel
// into keyframe-aligned CMAF segments. It is the only package that imports
// go-astiav (cgo); every libav object it allocates has one owner that frees it.
package transcode
