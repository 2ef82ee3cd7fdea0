package packager

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"sort"
	"time"

	"github.com/livegrid/livegrid/internal/manifest"
)

// view is what Origin serves of a stream: the rendered live playlists and
// where every segment of the presentation is. It is never changed once
// stored; each change stores a new one.
type view struct {
	stream string
	ended  bool
	maxAge int // playlist Cache-Control max-age, seconds

	master, mpd []byte // mpd is nil when it could not be rendered
	media       map[string][]byte
	kinds       map[string]manifest.Kind
	inits       map[string]map[string]string // rendition → init file name → store key
	parts       []partRange

	// For HTTP-FLV viewers: the ladder in order, the live window's
	// segments, and a channel closed when a newer view replaces this one.
	ladder []ladderEntry
	window []windowSeg
	next   chan struct{}
}

// ladderEntry is one rendition of a view's ladder.
type ladderEntry struct {
	name      string
	kind      manifest.Kind
	frameRate float64
	bitrate   int64
}

// windowSeg is one segment of the live window: its number and each
// rendition's live init name, by ladder index.
type windowSeg struct {
	seq   uint64
	inits []string
}

// partRange says which media sequence numbers a session published.
type partRange struct {
	first, count uint64
	session      string
}

// segmentKey is the store key of segment seq of a rendition, if the
// presentation published it.
func (v *view) segmentKey(rendition string, seq uint64) (string, bool) {
	if _, ok := v.kinds[rendition]; !ok {
		return "", false
	}
	i := sort.Search(len(v.parts), func(i int) bool { return v.parts[i].first+v.parts[i].count > seq })
	if i == len(v.parts) || seq < v.parts[i].first {
		return "", false
	}
	return sessionKey(v.stream, v.parts[i].session, rendition, manifest.SegmentName(seq)), true
}

// view returns what Origin serves for a stream, or nil.
func (p *Packager) view(name string) *view {
	p.mu.Lock()
	s := p.streams[name]
	p.mu.Unlock()
	if s == nil {
		return nil
	}
	return s.view.Load()
}

// render renders the live window and stores a new view; s.mu is held.
func (s *stream) render(now time.Time) {
	s.dirty = false
	pr := s.pres
	if pr == nil || !pr.published {
		s.replaceView(nil)
		return
	}
	ws := pr.windowStart()
	win := pr.segs[sort.Search(len(pr.segs), func(i int) bool { return pr.segs[i].seq >= ws }):]
	p := &manifest.Presentation{
		Live: true, Ended: pr.state == stateEnded, TargetDuration: pr.target,
		AvailabilityStart: pr.ast, PublishTime: now, UTCTimingURL: s.p.cfg.UTCTimingURL,
	}
	p.DiscontinuitySequence, p.PeriodStart = pr.periodOf(ws)
	v := &view{
		stream: s.name, ended: p.Ended, maxAge: max(1, int(pr.target/time.Second)/2),
		media: map[string][]byte{}, kinds: map[string]manifest.Kind{}, inits: map[string]map[string]string{},
		next: make(chan struct{}),
	}
	for _, sg := range win {
		seg := windowSeg{seq: sg.seq, inits: make([]string, len(sg.r))}
		for i, si := range sg.r {
			seg.inits[i] = si.liveInit
		}
		v.window = append(v.window, seg)
	}
	for i, lr := range pr.ladder {
		mr := lr.manifest()
		// The window holds one init segment per rendition, so one timescale.
		ts := win[0].r[i].timescale
		mr.Timescale = ts
		mr.InitURI = win[0].r[i].liveInit
		for _, sg := range win {
			si := sg.r[i]
			mr.Segments = append(mr.Segments, manifest.Segment{
				Seq: sg.seq, Start: rescale(si.start, si.timescale, ts), Duration: max(1, rescale(si.dur, si.timescale, ts)),
				Discontinuity: sg.disc, ProgramDateTime: pr.ast.Add(manifest.TicksToDuration(si.start, si.timescale)),
			})
		}
		p.Renditions = append(p.Renditions, mr)
		v.kinds[lr.info.Name] = lr.kind
		v.inits[lr.info.Name] = maps.Clone(lr.initKeys)
		v.ladder = append(v.ladder, ladderEntry{name: lr.info.Name, kind: lr.kind, frameRate: lr.info.FrameRate, bitrate: lr.info.Bitrate})
	}
	v.master = manifest.HLSMaster(p, nil)
	for i := range p.Renditions {
		r := &p.Renditions[i]
		v.media[r.Name] = manifest.HLSMedia(p, r)
	}
	mpd, err := manifest.DASH(p, nil)
	if err != nil {
		s.log.Error("rendering the MPD", "err", err)
	} else {
		v.mpd = mpd
	}
	for _, pt := range pr.parts {
		if pt.count > 0 {
			v.parts = append(v.parts, partRange{first: pt.firstSeq, count: pt.count, session: pt.session})
		}
	}
	s.replaceView(v)
}

// replaceView stores a new view and wakes the viewers waiting on the old
// one; s.mu is held.
func (s *stream) replaceView(v *view) {
	if old := s.view.Swap(v); old != nil {
		close(old.next)
	}
}

// periodOf returns, for a window starting at seq ws, the HLS
// discontinuity sequence (discontinuities before the window) and the
// media time at which the window's first period began.
func (pr *presentation) periodOf(ws uint64) (uint64, time.Duration) {
	n := sort.Search(len(pr.discs), func(i int) bool { return pr.discs[i].seq >= ws })
	var start time.Duration
	if n > 0 {
		start = pr.discs[n-1].start
	}
	return uint64(n), start
}

// manifest describes the rendition for the manifest package, without
// timescale, init or segments.
func (lr *rendition) manifest() manifest.Rendition {
	peak, avg := lr.bandwidth()
	return manifest.Rendition{
		Name: lr.info.Name, Kind: lr.kind, Codecs: lr.info.Codec, Bandwidth: peak, AverageBandwidth: avg,
		Width: lr.info.Width, Height: lr.info.Height, FrameRate: lr.info.FrameRate,
		SampleRate: lr.info.SampleRate, Channels: lr.info.Channels,
	}
}

// writeVOD writes the session's look-back playlists: vod.m3u8 per
// rendition and for the session, and vod.mpd unless an init segment
// changed within the session (an MPD names one per rendition). The HLS
// playlists name the right init after every discontinuity.
func (s *stream) writeVOD(pt *part) error {
	pr := s.pres
	if pt.count == 0 {
		return nil
	}
	lo := sort.Search(len(pr.segs), func(i int) bool { return pr.segs[i].seq >= pt.firstSeq })
	hi := sort.Search(len(pr.segs), func(i int) bool { return pr.segs[i].seq >= pt.firstSeq+pt.count })
	segs := pr.segs[lo:hi]
	if len(segs) == 0 {
		return nil
	}
	if segs[0].seq != pt.firstSeq {
		s.log.Error("session's first segments are no longer in memory; its VOD playlist starts later", "session", pt.session, "from", segs[0].seq)
	}
	p := &manifest.Presentation{TargetDuration: pr.target}
	runs := make([][]string, len(pr.ladder))
	oneInit := true
	for i, lr := range pr.ladder {
		mr := lr.manifest()
		ts := segs[len(segs)-1].r[i].timescale
		mr.Timescale = ts
		var sizes []int64
		var secs []float64
		for k, sg := range segs {
			si := sg.r[i]
			disc := sg.disc && k > 0
			if k == 0 || disc {
				runs[i] = append(runs[i], si.vodInit)
			}
			oneInit = oneInit && si.vodInit == segs[0].r[i].vodInit
			mr.Segments = append(mr.Segments, manifest.Segment{
				Seq: sg.seq, Start: rescale(si.start, si.timescale, ts), Duration: max(1, rescale(si.dur, si.timescale, ts)),
				Discontinuity: disc, ProgramDateTime: pr.ast.Add(manifest.TicksToDuration(si.start, si.timescale)),
			})
			sizes = append(sizes, int64(si.size))
			secs = append(secs, manifest.TicksToDuration(si.dur, si.timescale).Seconds())
		}
		mr.Bandwidth, mr.AverageBandwidth = manifest.MeasureBandwidth(sizes, secs)
		mr.InitURI = runs[i][0]
		p.Renditions = append(p.Renditions, mr)
	}

	prefix := "live/" + s.name + "/" + pt.session + "/"
	var errs []error
	for i := range p.Renditions {
		r := &p.Renditions[i]
		errs = append(errs, s.put(prefix+r.Name+"/"+vodPlaylist, setMapURIs(manifest.HLSMedia(p, r), runs[i]), typeHLS))
	}
	master := manifest.HLSMaster(p, func(r *manifest.Rendition) string { return r.Name + "/" + vodPlaylist })
	errs = append(errs, s.put(prefix+vodPlaylist, master, typeHLS))
	if oneInit {
		if mpd, err := manifest.DASH(p, nil); err != nil {
			errs = append(errs, err)
		} else {
			errs = append(errs, s.put(prefix+vodMPD, mpd, typeDASH))
		}
	} else {
		s.log.Info("init segment changed within the session; writing no vod.mpd", "session", pt.session)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("packager: VOD playlists of %s/%s: %w", s.name, pt.session, err)
	}
	return nil
}

// setMapURIs gives the EXT-X-MAP tags of a media playlist, in order, the
// init URIs in uris.
func setMapURIs(playlist []byte, uris []string) []byte {
	lines := bytes.SplitAfter(playlist, []byte("\n"))
	k := 0
	for i, l := range lines {
		if k < len(uris) && bytes.HasPrefix(l, []byte("#EXT-X-MAP:")) {
			lines[i] = []byte(`#EXT-X-MAP:URI="` + uris[k] + "\"\n")
			k++
		}
	}
	return bytes.Join(lines, nil)
}
