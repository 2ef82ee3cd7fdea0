package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/livegrid/livegrid/internal/flv"
)

// Bounds of the HLS source.
const (
	maxSegmentBytes = 64 << 20
	// liveStartSegments is how far from a live playlist's end a pull
	// starts, as players do (RFC 8216 6.3.3: at least three target
	// durations).
	liveStartSegments = 3
	// maxBadSegments is how many unreadable segments in a row end a
	// session.
	maxBadSegments = 3
	// minReload bounds how often a playlist is fetched.
	minReload = 200 * time.Millisecond
)

// hlsSource reads an HLS media playlist's MPEG-TS segments in order and
// turns them into tags, paced at the speed of their timestamps. It
// reloads a live playlist as RFC 8216 6.3.4 says, and ends at the
// EXT-X-ENDLIST of a finished one.
type hlsSource struct {
	p        *Puller
	log      *slog.Logger
	mediaURL *url.URL
	pl       *playlist
	next     uint64 // the media sequence number of the next segment
	loaded   time.Time
	changed  time.Time // when the playlist last had a new segment
	grew     bool      // the last reload brought a new segment

	demux   *tsDemuxer
	conv    tsToFLV
	clock   tsClock
	rebased bool  // offset is set for the current run of segments
	offset  int64 // added to unwrapped 90 kHz timestamps
	last    int64 // the latest rebased DTS, 90 kHz
	any     bool  // a segment was mapped
	jump    bool  // the next segment does not continue the last one
	bad     int   // unreadable segments in a row

	queue []flv.Tag
	pace  pacer
}

// openHLS loads the playlist at u (body, when given, is its content
// already fetched), picks the highest-bandwidth variant of a master
// playlist and returns a source positioned as a player would start.
func (p *Puller) openHLS(ctx context.Context, pl *pull, u *url.URL, body []byte) (tagSource, error) {
	var err error
	if body == nil {
		if body, u, err = p.fetch(ctx, u, nil, maxPlaylistBytes, p.setupTimeout()); err != nil {
			return nil, fmt.Errorf("playlist: %w", err)
		}
	}
	list, err := parsePlaylist(body)
	if err != nil {
		return nil, err
	}
	if list.master {
		v, _ := list.bestVariant()
		ref, err := url.Parse(v.uri)
		if err != nil {
			return nil, fmt.Errorf("%w: variant URI %q", errPlaylist, v.uri)
		}
		u = u.ResolveReference(ref)
		if v.audio != "" {
			pl.log.Debug("hls variant names an audio group; only audio muxed in its segments is pulled", "group", v.audio)
		}
		if body, u, err = p.fetch(ctx, u, nil, maxPlaylistBytes, p.setupTimeout()); err != nil {
			return nil, fmt.Errorf("variant playlist (bandwidth %d): %w", v.bandwidth, err)
		}
		if list, err = parsePlaylist(body); err != nil {
			return nil, fmt.Errorf("variant playlist: %w", err)
		}
		if list.master {
			return nil, fmt.Errorf("%w: a variant is itself a master playlist", errPlaylist)
		}
	}
	now := p.now()
	s := &hlsSource{p: p, log: pl.log, mediaURL: u, pl: list, loaded: now, changed: now, grew: true,
		demux: newTSDemuxer(), pace: pacer{now: p.now}}
	if err := s.check(); err != nil {
		return nil, err
	}
	if len(list.segments) > 0 {
		start := 0
		if !list.ended {
			start = max(0, len(list.segments)-liveStartSegments)
		}
		s.next = list.segments[start].seq
	} else {
		s.next = list.mediaSequence
	}
	return s, nil
}

// check refuses what the source cannot read: encrypted and fMP4 segments.
func (s *hlsSource) check() error {
	for _, seg := range s.pl.segments {
		if seg.keyMethod != "" && seg.keyMethod != "NONE" {
			return fmt.Errorf("%w: encrypted segments (METHOD=%s)", errors.ErrUnsupported, seg.keyMethod)
		}
		if seg.mapURI != "" {
			return fmt.Errorf("%w: fMP4 segments (EXT-X-MAP); only MPEG-TS HLS is pulled", errors.ErrUnsupported)
		}
	}
	return nil
}

func (s *hlsSource) Close() error { return nil }

// ReadTag returns the next tag, fetching segments and reloading the
// playlist as needed, and waits until the tag is due.
func (s *hlsSource) ReadTag(ctx context.Context) (flv.Tag, error) {
	for len(s.queue) == 0 {
		if err := s.fill(ctx); err != nil {
			return flv.Tag{}, err
		}
	}
	t := s.queue[0]
	s.queue = s.queue[1:]
	if err := s.pace.wait(ctx, t.Timestamp); err != nil {
		return flv.Tag{}, err
	}
	return t, nil
}

// fill maps the next segment, or waits for the playlist to grow.
func (s *hlsSource) fill(ctx context.Context) error {
	segs := s.pl.segments
	if len(segs) > 0 && s.next < segs[0].seq {
		// The playlist moved past the segments not read yet.
		s.log.Info("hls pull fell behind the live playlist; skipping ahead",
			"from_seq", s.next, "to_seq", segs[0].seq)
		s.next, s.jump = segs[0].seq, true
	}
	if len(segs) > 0 && s.next <= segs[len(segs)-1].seq {
		return s.segment(ctx, segs[s.next-segs[0].seq])
	}
	if s.pl.ended {
		return fmt.Errorf("%w: end of the playlist (EXT-X-ENDLIST)", errSourceEnded)
	}
	target := max(s.pl.targetDuration, time.Second)
	if stalled := s.p.now().Sub(s.changed); stalled > max(3*target, s.p.idleTimeout()) {
		return fmt.Errorf("live playlist has had no new segment for %v", stalled.Round(time.Second))
	}
	// RFC 8216 6.3.4: a target duration after a load that brought a new
	// segment, half of one after a load that did not.
	wait := target
	if !s.grew {
		wait = target / 2
	}
	if err := sleepUntil(ctx, s.loaded.Add(max(wait, minReload)), s.p.now); err != nil {
		return err
	}
	return s.reload(ctx)
}

func (s *hlsSource) reload(ctx context.Context) error {
	body, _, err := s.p.fetch(ctx, s.mediaURL, nil, maxPlaylistBytes, s.p.setupTimeout())
	s.loaded = s.p.now()
	if err != nil {
		return fmt.Errorf("reload playlist: %w", err)
	}
	list, err := parsePlaylist(body)
	if err != nil {
		return fmt.Errorf("reload playlist: %w", err)
	}
	if list.master {
		return fmt.Errorf("%w: media playlist became a master playlist", errPlaylist)
	}
	if list.mediaSequence < s.pl.mediaSequence {
		// The packager behind it restarted: start over at its live edge.
		return fmt.Errorf("%w: media sequence went back from %d to %d", errSourceEnded, s.pl.mediaSequence, list.mediaSequence)
	}
	lastSeq := func(p *playlist) uint64 {
		if len(p.segments) == 0 {
			return p.mediaSequence
		}
		return p.segments[len(p.segments)-1].seq + 1
	}
	s.grew = lastSeq(list) > lastSeq(s.pl) || list.ended && !s.pl.ended
	if s.grew {
		s.changed = s.loaded
	}
	s.pl = list
	return s.check()
}

// segment fetches one segment and queues its tags.
func (s *hlsSource) segment(ctx context.Context, seg mediaSegment) error {
	ref, err := url.Parse(seg.uri)
	if err != nil {
		return fmt.Errorf("%w: segment URI %q", errPlaylist, seg.uri)
	}
	var rng *[2]int64
	if seg.hasRange {
		rng = &[2]int64{seg.rangeOffset, seg.rangeLength}
	}
	timeout := max(s.p.setupTimeout(), 3*max(s.pl.targetDuration, seg.duration))
	data, _, err := s.p.fetch(ctx, s.mediaURL.ResolveReference(ref), rng, maxSegmentBytes, timeout)
	if err != nil {
		return fmt.Errorf("segment %d: %w", seg.seq, err)
	}
	s.next = seg.seq + 1
	tags, err := s.mapSegment(data, seg.discontinuity || s.jump)
	if err != nil {
		s.bad++
		s.log.Warn("hls segment skipped", "seq", seg.seq, "err", err)
		if s.bad >= maxBadSegments {
			return fmt.Errorf("%d unreadable segments in a row, the last: %w", s.bad, err)
		}
		s.jump = true
		return nil
	}
	s.bad, s.jump = 0, false
	s.queue = append(s.queue, tags...)
	return nil
}

// mapSegment demuxes a segment and maps its packets to tags in timestamp
// order. After a discontinuity the timestamps are moved to continue the
// previous segment's.
func (s *hlsSource) mapSegment(data []byte, discontinuity bool) ([]flv.Tag, error) {
	var pkts []pesPacket
	if err := s.demux.demux(data, func(p pesPacket) error {
		if p.hasPTS {
			pkts = append(pkts, p)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if len(pkts) == 0 {
		return nil, errNoMedia
	}
	if discontinuity {
		s.clock, s.rebased = tsClock{}, false
	}
	dts := make([]int64, len(pkts))
	for i, p := range pkts {
		dts[i] = s.clock.unwrap(p.dts)
	}
	if !s.rebased {
		next := int64(0)
		if s.any {
			next = s.last + resumeGap*90
		}
		s.offset, s.rebased = next-slices.Min(dts), true
	}
	var tags []flv.Tag
	for i, p := range pkts {
		d := dts[i] + s.offset
		pts := d + ptsOffset(p.pts, p.dts)
		switch p.streamType {
		case streamTypeH264:
			tags = append(tags, s.conv.video(p.data, d, pts)...)
		case streamTypeAAC:
			tags = append(tags, s.conv.audio(p.data, pts)...)
		}
		s.last = max(s.last, d)
	}
	s.any = true
	slices.SortStableFunc(tags, func(a, b flv.Tag) int { return int(int64(a.Timestamp) - int64(b.Timestamp)) })
	return tags, nil
}

// fetch GETs u (a byte range of it when rng is set) within timeout and
// returns at most limit bytes, and the URL they came from after
// redirects, which relative URIs in them resolve against.
func (p *Puller) fetch(ctx context.Context, u *url.URL, rng *[2]int64, limit int64, timeout time.Duration) ([]byte, *url.URL, error) {
	b, final, err := p.get(ctx, u, rng, limit, timeout)
	if final == nil {
		final = u
	}
	return b, final, err
}

func (p *Puller) get(ctx context.Context, u *url.URL, rng *[2]int64, limit int64, timeout time.Duration) ([]byte, *url.URL, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("no complete answer in %v", timeout))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, nil, fmt.Errorf("request: %w", err)
	}
	req.Header.Set("User-Agent", userAgent)
	if rng != nil {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(rng[0], 10)+"-"+strconv.FormatInt(rng[0]+rng[1]-1, 10))
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, nil, causeOf(ctx, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK && rng == nil, resp.StatusCode == http.StatusPartialContent && rng != nil:
	case resp.StatusCode == http.StatusOK: // a server that ignores Range
		if _, err := io.CopyN(io.Discard, resp.Body, rng[0]); err != nil {
			return nil, nil, causeOf(ctx, err)
		}
		limit = min(limit, rng[1])
	default:
		return nil, nil, fmt.Errorf("HTTP %s", resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, nil, causeOf(ctx, err)
	}
	if int64(len(b)) > limit {
		if rng != nil {
			return b[:limit], resp.Request.URL, nil
		}
		return nil, nil, fmt.Errorf("more than %d bytes", limit)
	}
	return b, resp.Request.URL, nil
}

// pacer holds tags back until their timestamps are due on the wall
// clock, so a playlist's backlog reaches the hub at the stream's speed.
// It resynchronizes after a stall or a timestamp jump rather than burst.
type pacer struct {
	now  func() time.Time
	set  bool
	wall time.Time
	ts   int64
}

// maxPaceLag is how late or early a tag may be before the pacer takes it
// as its new reference.
const maxPaceLag = 5 * time.Second

func (p *pacer) wait(ctx context.Context, ts uint32) error {
	now := p.now()
	due := p.wall.Add(time.Duration(int64(ts)-p.ts) * time.Millisecond)
	if !p.set || due.Sub(now) > maxPaceLag || now.Sub(due) > maxPaceLag {
		p.set, p.wall, p.ts = true, now, int64(ts)
		return nil
	}
	return sleepUntil(ctx, due, p.now)
}

// sleepUntil waits until t on the clock now, or until ctx ends.
func sleepUntil(ctx context.Context, t time.Time, now func() time.Time) error {
	d := t.Sub(now())
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
