package packager

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"time"

	"github.com/livegrid/livegrid/internal/cmaf"
	"github.com/livegrid/livegrid/internal/manifest"
)

// File names and content types.
const (
	vodPlaylist = "vod.m3u8"
	vodMPD      = "vod.mpd"

	typeHLS       = "application/vnd.apple.mpegurl"
	typeDASH      = "application/dash+xml"
	typeInit      = "video/mp4"
	typeSegment   = "video/iso.segment"
	typeAudioMP4  = "audio/mp4"
	maxOutputSegs = 64 // output segments of one source segment
)

// maxClamp is the largest overlap with the previous segment that the
// playlists smooth over; more is a discontinuity whose media time went
// back.
const maxClamp = 100 * time.Millisecond

// checkResult refuses a result no presentation could publish, before it
// is held.
func checkResult(r *Result) error {
	if len(r.Renditions) == 0 {
		return fmt.Errorf("%w: no renditions", ErrBadResult)
	}
	n := len(r.Renditions[0].Segments)
	names := make(map[string]bool, len(r.Renditions))
	for i := range r.Renditions {
		o := &r.Renditions[i]
		switch {
		case !validName(o.Name):
			return fmt.Errorf("%w: rendition name %q", ErrBadResult, o.Name)
		case names[o.Name]:
			return fmt.Errorf("%w: rendition %q appears twice", ErrBadResult, o.Name)
		case o.Kind != string(manifest.Video) && o.Kind != string(manifest.Audio):
			return fmt.Errorf("%w: rendition %q has kind %q", ErrBadResult, o.Name, o.Kind)
		case len(o.Init) == 0 && o.InitKey == "":
			return fmt.Errorf("%w: rendition %q has no init segment", ErrBadResult, o.Name)
		case len(o.Segments) != n || n == 0 || n > maxOutputSegs:
			return fmt.Errorf("%w: rendition %q has %d segments, want the same number (1..%d) in every rendition", ErrBadResult, o.Name, len(o.Segments), maxOutputSegs)
		}
		names[o.Name] = true
		for j := range o.Segments {
			sg := &o.Segments[j]
			switch {
			case len(sg.Data) == 0 && sg.Key == "":
				return fmt.Errorf("%w: rendition %q segment %d has neither data nor key", ErrBadResult, o.Name, j)
			case sg.Duration == 0:
				return fmt.Errorf("%w: rendition %q segment %d has no duration", ErrBadResult, o.Name, j)
			case sg.Timescale == 0 && o.Timescale == 0:
				return fmt.Errorf("%w: rendition %q segment %d has no timescale", ErrBadResult, o.Name, j)
			}
		}
	}
	return nil
}

// staged is one rendition's share of a result being published.
type staged struct {
	out       *Output
	hash      string
	init      *cmaf.Init
	initData  []byte // set when the session folder needs the init
	vodInit   string // init file name in the session folder
	timescale uint32
	segs      []Segment // by start time, rescaled to timescale
}

// commit publishes one source segment's result as the next output
// segments: it stores inits and segments under the session folder, then
// appends them to the presentation. Nothing changes when it fails.
func (s *stream) commit(pt *part, r Result, now time.Time) error {
	pr := s.pres
	fail := func(err error) error {
		return fmt.Errorf("packager: publish %s/%s/%d: %w", s.name, pt.session, r.Seq, err)
	}
	ladder := pr.ladder
	if ladder == nil {
		ladder = newLadder(r.Renditions)
	}
	base := s.nextSeq
	stages := make([]staged, len(ladder))
	for i, lr := range ladder {
		j := slices.IndexFunc(r.Renditions, func(o Output) bool { return o.Name == lr.info.Name })
		if j < 0 {
			return fail(fmt.Errorf("%w: rendition %q is missing", ErrBadResult, lr.info.Name))
		}
		o := &r.Renditions[j]
		if o.Kind != string(lr.kind) {
			return fail(fmt.Errorf("%w: rendition %q is %s, was %s", ErrBadResult, o.Name, o.Kind, lr.kind))
		}
		if err := s.stageInit(pt, lr, o, base, &stages[i]); err != nil {
			return fail(err)
		}
	}
	n := len(stages[0].segs)
	for i := range stages {
		if len(stages[i].segs) != n {
			return fail(fmt.Errorf("%w: renditions give different numbers of segments", ErrBadResult))
		}
	}

	// Timeline: where the new segments sit against the previous ones.
	first := !pr.published
	disc := !first && (pr.pendingDisc || r.Discontinuity)
	changed := false
	for i, lr := range ladder {
		changed = changed || !first && lr.initHash != stages[i].hash
	}
	disc = disc || changed
	rewind := false
	for i, lr := range ladder {
		st := &stages[i]
		prevEnd := lr.lastEnd
		for j := range st.segs {
			sg := &st.segs[j].Segment
			if start := manifest.TicksToDuration(sg.Start, st.timescale); start < prevEnd {
				overlap := manifest.DurationToTicks(prevEnd-start, st.timescale)
				switch {
				case prevEnd-start <= maxClamp && overlap*2 <= sg.Duration:
					// A few ticks of overlap (encoder priming, or audio
					// at a reconnect): the playlists start the segment
					// where the one before it ended.
					sg.Start += overlap
					sg.Duration -= overlap
				case j == 0:
					disc, rewind = true, true
				default:
					return fail(fmt.Errorf("%w: rendition %q: output segment %d starts %v before the end of the one before it",
						ErrBadResult, lr.info.Name, j, prevEnd-start))
				}
			}
			prevEnd = manifest.TicksToDuration(sg.Start+sg.Duration, st.timescale)
		}
	}

	// Store: inits first, so no playlist can name a segment without one.
	for i, lr := range ladder {
		st := &stages[i]
		if st.initData != nil {
			if err := s.put(sessionKey(s.name, pt.session, lr.info.Name, st.vodInit), st.initData, contentType(lr.kind, true)); err != nil {
				return fail(err)
			}
		}
	}
	sizes := make([][]int, len(ladder))
	for i, lr := range ladder {
		for j := range stages[i].segs {
			sg := &stages[i].segs[j]
			data := sg.Data
			if len(data) == 0 {
				var err error
				if data, err = s.get(sg.Key); err != nil {
					return fail(err)
				}
			}
			if err := s.put(sessionKey(s.name, pt.session, lr.info.Name, manifest.SegmentName(base+uint64(j))), data, contentType(lr.kind, false)); err != nil {
				return fail(err)
			}
			sizes[i] = append(sizes[i], len(data))
		}
	}

	// Commit.
	if first {
		pr.ladder = ladder
		pr.published = true
		pr.floor = base
	}
	if changed {
		pr.floor = base
		s.p.m.inits.Add(1)
		s.log.Info("init segment changed; the live window starts over", "session", pt.session, "seq", base)
	}
	if rewind {
		s.p.m.rewinds.Add(1)
		s.log.Warn("media time went back at a discontinuity", "session", pt.session, "seq", base)
	}
	periodStart := time.Duration(math.MaxInt64)
	var liveEdge time.Duration
	for i, lr := range ladder {
		st := &stages[i]
		if lr.initHash != st.hash {
			lr.initHash = st.hash
			lr.initName = liveInitName(base)
			lr.initKeys[lr.initName] = sessionKey(s.name, pt.session, lr.info.Name, st.vodInit)
			lr.update(st.out, st.init)
		}
		if pt.inits[lr.info.Name] == nil {
			pt.inits[lr.info.Name] = map[string]string{}
		}
		pt.inits[lr.info.Name][st.hash] = st.vodInit
		for j := range st.segs {
			sg := &st.segs[j]
			start := manifest.TicksToDuration(sg.Start, st.timescale)
			dur := manifest.TicksToDuration(sg.Duration, st.timescale)
			if j == 0 {
				periodStart = min(periodStart, start)
			}
			lr.lastEnd = start + dur
			liveEdge = max(liveEdge, lr.lastEnd)
			lr.measure(sizes[i][j], dur)
			pr.target = max(pr.target, dur)
		}
	}
	for j := range n {
		seg := &outSeg{seq: base + uint64(j), part: pt, disc: disc && j == 0, r: make([]segInfo, len(ladder))}
		for i, lr := range ladder {
			st := &stages[i]
			seg.r[i] = segInfo{
				start: st.segs[j].Start, dur: st.segs[j].Duration, timescale: st.timescale, size: sizes[i][j],
				liveInit: lr.initName, vodInit: st.vodInit,
			}
		}
		pr.segs = append(pr.segs, seg)
	}
	if disc {
		pr.discs = append(pr.discs, discontinuity{seq: base, start: periodStart})
		s.p.m.discs.Add(1)
	}
	if first {
		pr.ast = now.Add(-liveEdge)
	}
	if pt.count == 0 {
		pt.firstSeq = base
	}
	pt.count += uint64(n)
	s.nextSeq += uint64(n)
	pr.pendingDisc = false
	s.dirty = true
	s.p.m.segments.Add(uint64(n))
	s.p.m.sources.Add(1)
	s.trim()
	return nil
}

// stageInit works out a rendition's init segment and timescale for a
// result: its hash, what it says, and under which name the session
// folder keeps it (reading it from the store only when needed).
func (s *stream) stageInit(pt *part, lr *rendition, o *Output, base uint64, st *staged) error {
	pr := s.pres
	st.out = o
	data := o.Init
	switch {
	case len(data) > 0:
		sum := sha256.Sum256(data)
		st.hash = hex.EncodeToString(sum[:])
	case o.InitHash != "":
		st.hash = o.InitHash
	case pt.initHashes[o.InitKey] != "":
		st.hash = pt.initHashes[o.InitKey]
	}
	vod, stored := pt.inits[lr.info.Name][st.hash]
	st.init = pr.initInfo[st.hash]
	if st.hash == "" || !stored || st.init == nil {
		if len(data) == 0 {
			var err error
			if data, err = s.get(o.InitKey); err != nil {
				return err
			}
			sum := sha256.Sum256(data)
			h := hex.EncodeToString(sum[:])
			if st.hash != "" && st.hash != h {
				return fmt.Errorf("%w: rendition %q: init %s has SHA-256 %s, the result says %s", ErrBadResult, o.Name, o.InitKey, h, st.hash)
			}
			st.hash = h
			pt.initHashes[o.InitKey] = h
			vod, stored = pt.inits[lr.info.Name][st.hash]
		}
		if st.init = pr.initInfo[st.hash]; st.init == nil {
			in, err := cmaf.ParseInit(data)
			if err != nil {
				return fmt.Errorf("%w: rendition %q: %w", ErrBadResult, o.Name, err)
			}
			if in.Timescale == 0 {
				return fmt.Errorf("%w: rendition %q: init segment has timescale 0", ErrBadResult, o.Name)
			}
			st.init = in
			pr.initInfo[st.hash] = in
		}
	}
	if !stored {
		st.initData = data
		vod = manifest.DefaultInitName
		if len(pt.inits[lr.info.Name]) > 0 {
			vod = numberedInit(base)
		}
	}
	st.vodInit = vod
	// The init's mdhd timescale is what the segments' times count in.
	st.timescale = st.init.Timescale
	st.segs = slices.Clone(o.Segments)
	for j := range st.segs {
		sg := &st.segs[j].Segment
		from := cmp.Or(sg.Timescale, o.Timescale)
		sg.Start = rescale(sg.Start, from, st.timescale)
		sg.Duration = max(1, rescale(sg.Duration, from, st.timescale))
		sg.Timescale = st.timescale
	}
	slices.SortStableFunc(st.segs, func(a, b Segment) int { return cmp.Compare(a.Start, b.Start) })
	return nil
}

// newLadder makes a presentation's renditions from its first result:
// video by bitrate, highest first (the master playlist's order), then
// audio as given.
func newLadder(outs []Output) []*rendition {
	ladder := make([]*rendition, 0, len(outs))
	for i := range outs {
		o := outs[i].Rendition
		o.Init = nil
		ladder = append(ladder, &rendition{info: o, kind: manifest.Kind(o.Kind), initKeys: map[string]string{}})
	}
	slices.SortStableFunc(ladder, func(a, b *rendition) int {
		if a.kind != b.kind {
			if a.kind == manifest.Video {
				return -1
			}
			return 1
		}
		if a.kind == manifest.Video {
			return cmp.Or(cmp.Compare(b.info.Bitrate, a.info.Bitrate), cmp.Compare(b.info.Height, a.info.Height))
		}
		return 0
	})
	return ladder
}

// update takes a new init segment's description, filling what the worker
// left out from the init itself.
func (lr *rendition) update(o *Output, in *cmaf.Init) {
	info := o.Rendition
	info.Init = nil
	info.Codec = cmp.Or(info.Codec, in.Codec)
	info.Width = cmp.Or(info.Width, in.Width)
	info.Height = cmp.Or(info.Height, in.Height)
	info.SampleRate = cmp.Or(info.SampleRate, in.SampleRate)
	info.Channels = cmp.Or(info.Channels, in.Channels)
	info.Timescale = in.Timescale
	lr.info = info
}

// measure adds one segment to the rendition's bandwidth.
func (lr *rendition) measure(size int, dur time.Duration) {
	secs := dur.Seconds()
	if secs <= 0 {
		return
	}
	b := float64(size) * 8
	lr.peak = max(lr.peak, int64(math.Ceil(b/secs)))
	lr.bits += b
	lr.secs += secs
}

// bandwidth is the peak and average bits/s for playlists: measured, and
// never under the ladder's target bitrate for the peak.
func (lr *rendition) bandwidth() (peak, avg int64) {
	peak = max(lr.peak, lr.info.Bitrate)
	if lr.secs > 0 {
		avg = int64(math.Ceil(lr.bits / lr.secs))
	}
	return max(peak, 1), avg
}

// trim forgets segments no one needs in memory any more: those before
// the live window that belong to finished sessions (whose VOD playlists
// are written).
func (s *stream) trim() {
	pr := s.pres
	keep := pr.windowStart()
	if head := pr.parts[pr.head]; head.count > 0 {
		keep = min(keep, head.firstSeq)
	}
	i := 0
	for i < len(pr.segs) && pr.segs[i].seq < keep {
		i++
	}
	if i > 0 {
		pr.segs = slices.Delete(pr.segs, 0, i)
	}
}

// windowStart is the media sequence number of the live window's first
// segment: Window segments back from the newest, but not before the last
// init change.
func (pr *presentation) windowStart() uint64 {
	if len(pr.segs) == 0 {
		return pr.floor
	}
	next := pr.segs[len(pr.segs)-1].seq + 1
	if next-pr.floor > uint64(pr.window) {
		return next - uint64(pr.window)
	}
	return pr.floor
}

// put and get are store calls bounded by StoreTimeout.
func (s *stream) put(key string, data []byte, contentType string) error {
	ctx, cancel := context.WithTimeout(s.p.ctx, s.p.cfg.StoreTimeout)
	defer cancel()
	if err := s.p.store.Put(ctx, key, data, contentType); err != nil {
		s.p.m.storeErrs.Add(1)
		return fmt.Errorf("%w: write %s: %w", ErrStore, key, err)
	}
	return nil
}

func (s *stream) get(key string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(s.p.ctx, s.p.cfg.StoreTimeout)
	defer cancel()
	data, err := s.p.store.Get(ctx, key)
	if err != nil {
		s.p.m.storeErrs.Add(1)
		return nil, fmt.Errorf("%w: read %s: %w", ErrStore, key, err)
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: read %s: empty object", ErrBadResult, key)
	}
	return data, nil
}

// sessionKey is the store key of a file in a session's rendition folder.
func sessionKey(stream, session, rendition, name string) string {
	return "live/" + stream + "/" + session + "/" + rendition + "/" + name
}

// liveInitName names, in live playlists, an init segment first used at
// media sequence number seq; it is unique as long as the numbers are.
func liveInitName(seq uint64) string {
	if seq == 0 {
		return manifest.DefaultInitName
	}
	return numberedInit(seq)
}

// numberedInit is "init-" and the number as SegmentName writes it.
func numberedInit(seq uint64) string {
	return fmt.Sprintf("init-%08d.mp4", seq)
}

func contentType(k manifest.Kind, init bool) string {
	switch {
	case k == manifest.Audio:
		return typeAudioMP4
	case init:
		return typeInit
	}
	return typeSegment
}

// rescale converts ticks between timescales, rounding down and
// saturating.
func rescale(v uint64, from, to uint32) uint64 {
	if from == to || from == 0 {
		return v
	}
	hi, lo := bits.Mul64(v, uint64(to))
	if hi >= uint64(from) {
		return math.MaxUint64
	}
	q, _ := bits.Div64(hi, lo, uint64(from))
	return q
}
