package hub

import (
	"bytes"

	"github.com/livegrid/livegrid/internal/flv"
)

// tagKind is what a tag means to the GOP cache and to slow readers.
type tagKind uint8

const (
	// kindFrame is an audio frame, a video inter frame or script data
	// other than onMetaData.
	kindFrame tagKind = iota
	// kindKeyframe is a coded video keyframe: where a GOP, and a reader,
	// may start.
	kindKeyframe
	// kindHeader is onMetaData or an audio or video sequence header.
	kindHeader
)

// onMetaData is the AMF0 string that starts an onMetaData script body.
var onMetaData = []byte("\x02\x00\x0aonMetaData")

// classify says what a tag is. A body the flv parsers reject is a plain
// frame: it is passed on, but never starts a GOP.
func classify(t flv.Tag) tagKind {
	switch t.Type {
	case flv.TagVideo:
		v, err := flv.ParseVideo(t.Data)
		switch {
		case err != nil:
			return kindFrame
		case v.SequenceHeader:
			return kindHeader
		case v.Keyframe:
			return kindKeyframe
		}
	case flv.TagAudio:
		if a, err := flv.ParseAudio(t.Data); err == nil && a.SequenceHeader {
			return kindHeader
		}
	case flv.TagScript:
		if bytes.HasPrefix(flv.TrimSetDataFrame(t.Data), onMetaData) {
			return kindHeader
		}
	}
	return kindFrame
}

// gopCache holds what a joining reader needs before the live tags: the
// latest onMetaData and sequence headers, and the tags since the latest
// keyframe. It is not safe for concurrent use; Stream guards it.
type gopCache struct {
	maxBytes, maxTags int

	meta, video, audio flv.Tag // zero Type: not seen
	// gen counts header changes, so a reader that skipped some tags can
	// tell whether it missed one.
	gen uint64

	gop      []flv.Tag // starts with a keyframe when ok
	gopBytes int
	ok       bool   // gop is complete since its keyframe
	drops    uint64 // GOPs dropped for passing a cap
}

// add records a tag the publisher wrote and returns its kind.
func (c *gopCache) add(t flv.Tag) tagKind {
	kind := classify(t)
	switch kind {
	case kindHeader:
		slot := c.slot(t.Type)
		if slot.Type != 0 && bytes.Equal(slot.Data, t.Data) {
			return kind // encoders often repeat headers before keyframes
		}
		changed := slot.Type != 0
		*slot = t
		c.gen++
		if changed && t.Type != flv.TagScript {
			// The cached frames need the old configuration.
			c.dropGOP()
		}
	case kindKeyframe:
		c.clearGOP()
		c.ok = true
		c.append(t)
	case kindFrame:
		if c.ok {
			c.append(t)
		}
	}
	return kind
}

func (c *gopCache) slot(typ flv.TagType) *flv.Tag {
	switch typ {
	case flv.TagVideo:
		return &c.video
	case flv.TagAudio:
		return &c.audio
	}
	return &c.meta
}

func (c *gopCache) append(t flv.Tag) {
	c.gop = append(c.gop, t)
	c.gopBytes += len(t.Data)
	if len(c.gop) > c.maxTags || c.gopBytes > c.maxBytes {
		c.dropGOP()
		c.drops++
	}
}

// dropGOP empties the cache until the next keyframe.
func (c *gopCache) dropGOP() {
	c.clearGOP()
	c.ok = false
}

func (c *gopCache) clearGOP() {
	clear(c.gop) // let the bodies go; keep the array
	c.gop = c.gop[:0]
	c.gopBytes = 0
}

// headers returns the known headers, metadata first, stamped with ts so
// that a reader's timeline does not jump back to them.
func (c *gopCache) headers(ts uint32) []flv.Tag {
	var hs []flv.Tag
	for _, h := range [...]flv.Tag{c.meta, c.video, c.audio} {
		if h.Type != 0 {
			h.Timestamp = ts
			hs = append(hs, h)
		}
	}
	return hs
}

// start returns what a joining reader gets first, the headers and then
// the cached GOP, and whether that GOP starts with a keyframe.
func (c *gopCache) start(liveTS uint32) ([]flv.Tag, bool) {
	ts := liveTS
	keyed := c.ok && len(c.gop) > 0
	if keyed {
		ts = c.gop[0].Timestamp
	}
	tags := c.headers(ts)
	if keyed {
		tags = append(tags, c.gop...)
	}
	return tags, keyed
}

// reset forgets everything, for an ended stream.
func (c *gopCache) reset() {
	c.dropGOP()
	c.gop = nil
	c.meta, c.video, c.audio = flv.Tag{}, flv.Tag{}, flv.Tag{}
}
