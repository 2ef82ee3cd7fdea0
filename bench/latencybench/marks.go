package latencybench

import (
	"math"
	"sort"
	"sync"
	"time"
)

// frameMark is one video frame as the publisher sent it: its timestamps
// on the source timeline and the wall-clock instant it went to the RTMP
// connection. That instant is the mark every latency is measured from.
type frameMark struct {
	DTS  uint32 // FLV tag timestamp, ms
	PTS  int64  // DTS + composition time, ms
	Key  bool
	Sent time.Time
}

// marks is the publisher's record of sent frames; observers look frames
// up by timestamp. The publisher appends in send order.
type marks struct {
	mu     sync.Mutex
	frames []frameMark
	byDTS  map[uint32]int
	byPTS  []int // indexes of frames sorted by PTS
}

func newMarks() *marks { return &marks{byDTS: map[uint32]int{}} }

func (m *marks) add(f frameMark) {
	m.mu.Lock()
	defer m.mu.Unlock()
	i := len(m.frames)
	m.frames = append(m.frames, f)
	if _, dup := m.byDTS[f.DTS]; !dup {
		m.byDTS[f.DTS] = i
	}
	// Frames come in decode order; with B-frames a frame's PTS may be below
	// the last one's, so insert in place (a few frames from the end).
	j := sort.Search(len(m.byPTS), func(k int) bool { return m.frames[m.byPTS[k]].PTS > f.PTS })
	m.byPTS = append(m.byPTS, 0)
	copy(m.byPTS[j+1:], m.byPTS[j:])
	m.byPTS[j] = i
}

// dts returns the frame sent with FLV timestamp dts.
func (m *marks) dts(dts uint32) (frameMark, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	i, ok := m.byDTS[dts]
	if !ok {
		return frameMark{}, false
	}
	return m.frames[i], true
}

// nearestPTS returns the frame whose PTS is nearest ms, if it is within
// tol milliseconds.
func (m *marks) nearestPTS(ms, tol float64) (frameMark, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	j := sort.Search(len(m.byPTS), func(k int) bool { return float64(m.frames[m.byPTS[k]].PTS) >= ms })
	best, bestD := -1, math.Inf(1)
	for _, k := range []int{j - 1, j} {
		if k < 0 || k >= len(m.byPTS) {
			continue
		}
		f := m.frames[m.byPTS[k]]
		if d := math.Abs(float64(f.PTS) - ms); d < bestD {
			best, bestD = m.byPTS[k], d
		}
	}
	if best < 0 || bestD > tol {
		return frameMark{}, false
	}
	return m.frames[best], true
}

// firstKey returns the first keyframe sent.
func (m *marks) firstKey() (frameMark, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, f := range m.frames {
		if f.Key {
			return f, true
		}
	}
	return frameMark{}, false
}

// keyframes returns the keyframes sent with PTS below cutoff (ms).
func (m *marks) keyframes(cutoff int64) []frameMark {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []frameMark
	for _, f := range m.frames {
		if f.Key && f.PTS < cutoff {
			out = append(out, f)
		}
	}
	return out
}

// calibrator finds the constant offset between a server's timeline and
// the source's: a stream's first segment (number 0) starts with the first
// keyframe sent, so their difference is the offset. Offsets within tol are
// rounding and count as none.
type calibrator struct {
	offsetMS float64
	done     bool
}

// observe calibrates on segment number seq starting at ms, once.
func (c *calibrator) observe(seq int64, ms float64, first frameMark, haveFirst bool, tol float64) {
	if c.done || seq != 0 || !haveFirst {
		return
	}
	c.done = true
	if off := ms - float64(first.PTS); math.Abs(off) > tol {
		c.offsetMS = off
	}
}
