package transcode

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/livegrid/livegrid/internal/cmaf"
	"github.com/livegrid/livegrid/internal/manifest"
	"github.com/livegrid/livegrid/internal/testmedia"
	"github.com/livegrid/livegrid/profiles"
)

// TestAudioContinuous checks the audio rendition for gaps and drift at
// segment boundaries: each segment's tfdt is where the previous one ended,
// every AAC frame is 1024 samples, and the total matches the source.
func TestAudioContinuous(t *testing.T) {
	tests := []struct {
		name    string
		clip    testmedia.Clip
		encoder string
	}{
		{"aac copied from mp4", testmedia.Clip{Width: 320, Height: 180, Seconds: 7}, "copy"},
		{"aac copied from mpegts (ADTS)", testmedia.Clip{Width: 320, Height: 180, Seconds: 7, Format: "mpegts"}, "copy"},
		{"mp3 transcoded", testmedia.Clip{Width: 320, Height: 180, Seconds: 7, ACodec: "libmp3lame", Format: "flv"}, "aac"},
		{"mono pcm in mkv transcoded", testmedia.Clip{Width: 320, Height: 180, Seconds: 7, ACodec: "pcm_s16le", Format: "matroska", Channels: 1}, "aac"},
	}
	eng := New(Options{Log: quietLog()})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := testmedia.Make(t, tt.clip)
			sum, dir := transcodeDir(t, eng, src, fastLadder(t), 2*time.Second)
			var audio *RenditionInfo
			for i := range sum.Renditions {
				if sum.Renditions[i].Kind == "audio" {
					audio = &sum.Renditions[i]
				}
			}
			if audio == nil {
				t.Fatal("no audio rendition")
			}
			if audio.Encoder != tt.encoder || audio.Codec != "mp4a.40.2" {
				t.Errorf("audio %s via %s, want mp4a.40.2 via %s", audio.Codec, audio.Encoder, tt.encoder)
			}
			var next uint64
			var total uint64
			for seq := uint64(0); ; seq++ {
				b, err := os.ReadFile(filepath.Join(dir, "audio", manifest.SegmentName(seq)))
				if os.IsNotExist(err) {
					break
				}
				ms, err := cmaf.ParseMediaSegment(b)
				if err != nil {
					t.Fatal(err)
				}
				if seq > 0 && ms.BaseDecodeTime != next {
					t.Errorf("segment %d starts at %d, previous ended at %d", seq, ms.BaseDecodeTime, next)
				}
				for i, s := range ms.Samples {
					last := seq > 0 && i == len(ms.Samples)-1
					if s.Duration != 1024 && !last {
						t.Errorf("segment %d sample %d lasts %d samples, want 1024", seq, i, s.Duration)
						break
					}
				}
				next = ms.BaseDecodeTime + ms.Duration
				total += ms.Duration
			}
			secs := float64(total) / float64(audio.Timescale)
			if secs < 6.9 || secs > 7.1 {
				t.Errorf("audio lasts %.3fs, source 7s", secs)
			}
			// A player decodes the audio rendition end to end.
			fs := testmedia.Frames(t, filepath.Join(dir, "audio", "index.m3u8"), "a:0")
			if len(fs) < 320 { // 6.9 s of 1024-sample frames at 48 kHz
				t.Errorf("decoded %d audio frames", len(fs))
			}
		})
	}
}

func TestHEVCLadder(t *testing.T) {
	src := testmedia.Make(t, testmedia.Clip{Width: 854, Height: 480, Seconds: 2})
	ladder, err := profiles.Builtin("hevc")
	if err != nil {
		t.Fatal(err)
	}
	for i := range ladder.Rungs {
		ladder.Rungs[i].Preset = "ultrafast"
	}
	eng := New(Options{Log: quietLog()})
	sum, dir := transcodeDir(t, eng, src, ladder, 2*time.Second)
	for _, r := range sum.Renditions {
		if r.Kind != "video" {
			continue
		}
		if r.Encoder != "libx265" || len(r.Codec) < 5 || r.Codec[:5] != "hvc1." {
			t.Errorf("%s: %s via %s, want hvc1 via libx265", r.Name, r.Codec, r.Encoder)
		}
		fs := testmedia.Frames(t, filepath.Join(dir, r.Name, "index.m3u8"), "v:0")
		if len(fs) != 60 || fs[0].Width != r.Width {
			t.Errorf("%s: %d frames decoded", r.Name, len(fs))
		}
	}
}
