package flvrelay

// This file maps upstream tags onto what viewers get: what a tag is, and
// one timeline across the upstreams a stream has gone through. pull.go
// owns the connections; hub fans the result out.

import (
	"bytes"

	"github.com/livegrid/livegrid/internal/flv"
)

// tagKind is what a tag means to the timeline.
type tagKind uint8

const (
	// kindFrame is an audio frame or a video inter frame.
	kindFrame tagKind = iota
	// kindKeyframe is a coded video keyframe.
	kindKeyframe
	// kindHeader is onMetaData, a sequence header or other script data:
	// it carries no media time of its own.
	kindHeader
	// kindEnd is a video end-of-sequence marker: an upstream's end, not
	// the stream's, so viewers never get it.
	kindEnd
)

// onMetaData is the AMF0 string that starts an onMetaData script body.
var onMetaData = []byte("\x02\x00\x0aonMetaData")

// classify says what a tag is, and for a video frame its composition
// time (presentation minus decode time, ms). A body the flv parsers
// reject is a frame: it is passed on, but never ends a wait for a
// keyframe.
func classify(t flv.Tag) (tagKind, int64) {
	switch t.Type {
	case flv.TagVideo:
		v, err := flv.ParseVideo(t.Data)
		switch {
		case err != nil:
		case v.SequenceHeader:
			return kindHeader, 0
		case v.EndOfSequence:
			return kindEnd, 0
		case v.Keyframe:
			return kindKeyframe, int64(v.CompositionTime)
		default:
			return kindFrame, int64(v.CompositionTime)
		}
	case flv.TagAudio:
		a, err := flv.ParseAudio(t.Data)
		switch {
		case err != nil:
		case a.EndOfSequence:
			return kindEnd, 0
		case a.SequenceHeader:
			return kindHeader, 0
		}
	case flv.TagScript:
		return kindHeader, 0
	}
	return kindFrame, 0
}

// isMetadata reports whether a script tag is onMetaData.
func isMetadata(t flv.Tag) bool {
	return t.Type == flv.TagScript && bytes.HasPrefix(flv.TrimSetDataFrame(t.Data), onMetaData)
}

// defaultFrameGap is the step between the last frame of one upstream and
// the first of the next when no video frame rate has been seen.
const defaultFrameGap = 40 // ms, one frame at 25 fps

// timeline gives viewers one stream across upstream reconnects. The
// first upstream's timestamps pass through; each later upstream is
// shifted so its first frame is decoded and presented one frame after
// the last frame sent, and no timestamp ever goes back: flv.js and
// ffmpeg both stumble on a timeline that does. Its zero value is ready;
// one goroutine uses it.
type timeline struct {
	sent    bool  // a tag has been passed on
	wrote   bool  // a frame has been passed on
	last    int64 // the latest timestamp passed on, ms
	lastPTS int64 // the latest presentation time of a video frame passed on
	gap     int64 // one video frame's duration, ms; 0 until seen

	// The current upstream.
	after     bool  // it follows an upstream that passed tags on
	based     bool  // its first frame has fixed shift
	shift     int64 // viewer time minus upstream time
	waitKey   bool  // drop frames until its first keyframe
	lastVideo int64 // its latest video frame's timestamp, upstream time
	haveVideo bool
}

// next starts a new upstream. video says the stream has carried video:
// then the new upstream's frames wait for its first keyframe, since
// frames before it refer to pictures this stream's viewers never got.
func (tl *timeline) next(video bool) {
	tl.after = tl.sent
	tl.based = false
	tl.shift = 0
	tl.waitKey = tl.wrote && video
	tl.haveVideo = false
}

// stamp returns the tag as viewers get it and its kind, or false to
// leave it out.
func (tl *timeline) stamp(t flv.Tag) (flv.Tag, tagKind, bool) {
	kind, cts := classify(t)
	switch kind {
	case kindEnd:
		return t, kind, false
	case kindHeader:
		if !tl.based && tl.after {
			// Before a later upstream's first frame its headers have no
			// place on the viewers' timeline but the current end.
			t.Timestamp = uint32(tl.last)
		} else {
			t.Timestamp = tl.out(t.Timestamp)
		}
		tl.sent = true
		return t, kind, true
	case kindFrame:
		if tl.waitKey {
			return t, kind, false
		}
	case kindKeyframe:
		tl.waitKey = false
	}
	if t.Type == flv.TagVideo {
		in := int64(t.Timestamp)
		if d := in - tl.lastVideo; tl.haveVideo && d > 0 && d <= 1000 {
			tl.gap = d
		}
		tl.lastVideo, tl.haveVideo = in, true
	}
	if !tl.based {
		tl.based = true
		if tl.after {
			start := tl.last // after headers alone
			if tl.wrote {
				gap := tl.gap
				if gap == 0 {
					gap = defaultFrameGap
				}
				// With B-frames a picture is shown after it is decoded:
				// the first new one must also be shown after the last
				// old one.
				start = max(tl.last+gap, tl.lastPTS+gap-cts)
			}
			tl.shift = start - int64(t.Timestamp)
		}
	}
	t.Timestamp = tl.out(t.Timestamp)
	if t.Type == flv.TagVideo {
		tl.lastPTS = max(tl.lastPTS, int64(t.Timestamp)+cts)
	}
	tl.sent, tl.wrote = true, true
	return t, kind, true
}

// out maps an upstream timestamp to the viewers' timeline, never before
// the last one passed on. FLV timestamps are 32 bits of milliseconds and
// wrap after 49 days; so do these.
func (tl *timeline) out(in uint32) uint32 {
	v := max(int64(in)+tl.shift, tl.last)
	tl.last = v
	return uint32(v)
}
