// Package vod writes a finished transcode to a folder: one sub-folder per
// rendition with its init segment, media segments and HLS media playlist,
// plus the HLS master playlist (index.m3u8) and DASH manifest (index.mpd)
// over the same CMAF segments.
package vod

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/livegrid/livegrid/internal/manifest"
	"github.com/livegrid/livegrid/internal/media"
)

// ErrInitChanged means a rendition's init segment changed mid-file (an
// encoder fallback to a different encoder); a VOD folder has one per rendition.
var ErrInitChanged = errors.New("init segment changed mid-file")

// Writer is a media.Sink that lays out a VOD presentation in Dir.
type Writer struct {
	Dir            string
	TargetDuration time.Duration

	order []string
	rends map[string]*rendition
}

type rendition struct {
	info  media.Rendition
	segs  []manifest.Segment
	sizes []int64
}

var _ media.Sink = (*Writer)(nil)

// NewWriter creates dir (and parents) and returns a Writer into it.
func NewWriter(dir string, target time.Duration) (*Writer, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("vod: %w", err)
	}
	return &Writer{Dir: dir, TargetDuration: target, rends: map[string]*rendition{}}, nil
}

// Rendition writes the rendition's init segment.
func (w *Writer) Rendition(r media.Rendition) error {
	if old, ok := w.rends[r.Name]; ok {
		if !bytes.Equal(old.info.Init, r.Init) {
			return fmt.Errorf("vod: rendition %s: %w", r.Name, ErrInitChanged)
		}
		return nil
	}
	dir := filepath.Join(w.Dir, r.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("vod: %w", err)
	}
	if err := writeFile(filepath.Join(dir, manifest.DefaultInitName), r.Init); err != nil {
		return err
	}
	w.rends[r.Name] = &rendition{info: r}
	w.order = append(w.order, r.Name)
	return nil
}

// Segment writes one media segment.
func (w *Writer) Segment(name string, s media.Segment) error {
	r, ok := w.rends[name]
	if !ok {
		return fmt.Errorf("vod: segment for unknown rendition %q", name)
	}
	if err := writeFile(filepath.Join(w.Dir, name, manifest.SegmentName(s.Seq)), s.Data); err != nil {
		return err
	}
	r.segs = append(r.segs, manifest.Segment{Seq: s.Seq, Start: s.Start, Duration: s.Duration})
	r.sizes = append(r.sizes, int64(len(s.Data)))
	return nil
}

// Presentation is the VOD presentation of what was written so far.
func (w *Writer) Presentation() *manifest.Presentation {
	p := &manifest.Presentation{TargetDuration: w.TargetDuration}
	for _, name := range w.order {
		r := w.rends[name]
		if len(r.segs) == 0 {
			continue
		}
		durs := make([]float64, len(r.segs))
		for i, s := range r.segs {
			durs[i] = float64(s.Duration) / float64(r.info.Timescale)
		}
		peak, avg := manifest.MeasureBandwidth(r.sizes, durs)
		kind := manifest.Video
		if r.info.Kind == "audio" {
			kind = manifest.Audio
		}
		p.Renditions = append(p.Renditions, manifest.Rendition{
			Name: name, Kind: kind, Codecs: r.info.Codec, Bandwidth: peak, AverageBandwidth: avg,
			Width: r.info.Width, Height: r.info.Height, FrameRate: r.info.FrameRate,
			SampleRate: r.info.SampleRate, Channels: r.info.Channels, Timescale: r.info.Timescale,
			Segments: r.segs,
		})
	}
	return p
}

// Finish writes every media playlist, the master playlist and the MPD.
func (w *Writer) Finish() error {
	p := w.Presentation()
	if len(p.Renditions) == 0 {
		return fmt.Errorf("vod: %w", manifest.ErrNoSegments)
	}
	for i := range p.Renditions {
		r := &p.Renditions[i]
		if err := writeFile(filepath.Join(w.Dir, r.Name, "index.m3u8"), manifest.HLSMedia(p, r)); err != nil {
			return err
		}
	}
	master := manifest.HLSMaster(p, func(r *manifest.Rendition) string { return r.Name + "/index.m3u8" })
	if err := writeFile(filepath.Join(w.Dir, "index.m3u8"), master); err != nil {
		return err
	}
	mpd, err := manifest.DASH(p, func(r *manifest.Rendition) string { return r.Name + "/" })
	if err != nil {
		return fmt.Errorf("vod: %w", err)
	}
	return writeFile(filepath.Join(w.Dir, "index.mpd"), mpd)
}

// writeFile writes through a temporary name so a reader never sees half a file.
func writeFile(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("vod: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("vod: %w", err)
	}
	return nil
}
