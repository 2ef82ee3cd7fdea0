package ingest

import (
	"bytes"
	"errors"
	"os"
	"testing"

	"github.com/livegrid/livegrid/internal/flv"
	"github.com/livegrid/livegrid/internal/testmedia"
)

// mapTS demuxes a whole TS file and maps it as the HLS source maps one
// segment, without the source's rebasing.
func mapTS(b []byte) ([]flv.Tag, *tsToFLV, error) {
	d := newTSDemuxer()
	var conv tsToFLV
	var clock tsClock
	var tags []flv.Tag
	err := d.demux(b, func(p pesPacket) error {
		if !p.hasPTS {
			return nil
		}
		dts := clock.unwrap(p.dts)
		pts := dts + ptsOffset(p.pts, p.dts)
		switch p.streamType {
		case streamTypeH264:
			tags = append(tags, conv.video(p.data, dts, pts)...)
		case streamTypeAAC:
			tags = append(tags, conv.audio(p.data, pts)...)
		}
		return nil
	})
	return tags, &conv, err
}

func TestTSToFLV(t *testing.T) {
	testmedia.Require(t, "ffmpeg")
	src := testmedia.Make(t, testmedia.Clip{Width: 320, Height: 180, Seconds: 3, Format: "mpegts"})
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	tags, conv, err := mapTS(b)
	if err != nil {
		t.Fatal(err)
	}
	var vHdr, aHdr, keys, frames, audio int
	var firstKeyTS, lastKeyTS uint32
	for _, tag := range tags {
		switch tag.Type {
		case flv.TagVideo:
			v, err := flv.ParseVideo(tag.Data)
			if err != nil {
				t.Fatal(err)
			}
			if v.SequenceHeader {
				c, err := flv.ParseAVCConfig(v.Payload)
				if err != nil || len(c.SPS) != 1 || len(c.PPS) != 1 || c.LengthSize != 4 {
					t.Fatalf("avcC %+v: %v", c, err)
				}
				vHdr++
				continue
			}
			frames++
			if v.Keyframe {
				if keys == 0 {
					firstKeyTS = tag.Timestamp
				}
				keys++
				lastKeyTS = tag.Timestamp
			}
			if bytes.Contains(v.Payload, []byte{0, 0, 0, 1, 0x09}) {
				t.Error("an access unit delimiter was kept")
			}
		case flv.TagAudio:
			a, err := flv.ParseAudio(tag.Data)
			if err != nil {
				t.Fatal(err)
			}
			if a.SequenceHeader {
				if a.SampleRate != 48000 || a.Channels != 2 {
					t.Fatalf("AAC %d Hz %d channels", a.SampleRate, a.Channels)
				}
				aHdr++
				continue
			}
			audio++
		}
	}
	// 3 s at 30 fps with a keyframe every 2 s; 48 kHz AAC in 1024-sample
	// frames. The parameter sets repeat at every keyframe but do not
	// change, so there is one sequence header of each.
	if vHdr != 1 || aHdr != 1 || frames != 90 || keys != 2 || audio < 140 || audio > 142 {
		t.Errorf("video headers %d, audio headers %d, frames %d, keyframes %d, audio frames %d", vHdr, aHdr, frames, keys, audio)
	}
	if d := lastKeyTS - firstKeyTS; d < 1950 || d > 2050 {
		t.Errorf("second keyframe %d ms after the first, want 2 s", d)
	}
	if conv.skipped != 0 {
		t.Errorf("%d frames skipped", conv.skipped)
	}
}

func TestTSDemuxDamage(t *testing.T) {
	testmedia.Require(t, "ffmpeg")
	src := testmedia.Make(t, testmedia.Clip{Width: 320, Height: 180, Seconds: 3, Format: "mpegts"})
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	whole, _, err := mapTS(b)
	if err != nil {
		t.Fatal(err)
	}
	// Drop one packet from the middle: the damaged PES (a frame, or a
	// few AAC frames) is skipped, the rest maps.
	cut := append(bytes.Clone(b[:188*400]), b[188*401:]...)
	d := newTSDemuxer()
	n := 0
	if err := d.demux(cut, func(pesPacket) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if d.skipped == 0 {
		t.Error("a lost packet went unnoticed")
	}
	tags, _, err := mapTS(cut)
	if err != nil || len(tags) < len(whole)-12 || len(tags) >= len(whole) {
		t.Errorf("%d tags of %d after losing a packet: %v", len(tags), len(whole), err)
	}
	for _, bad := range [][]byte{b[:100], append([]byte{0x48}, b[1:188]...), b[:188*3+5]} {
		if _, _, err := mapTS(bad); !errors.Is(err, errTS) {
			t.Errorf("%d bytes: err = %v, want errTS", len(bad), err)
		}
	}
}

func TestTSClock(t *testing.T) {
	var c tsClock
	for _, tt := range []struct{ in, want int64 }{
		{tsWrap - 90000, tsWrap - 90000},
		{tsWrap - 45000, tsWrap - 45000},
		{1000, tsWrap + 1000},
		{tsWrap - 1000, tsWrap - 1000}, // a step back across the wrap
		{5000, tsWrap + 5000},
	} {
		if got := c.unwrap(tt.in); got != tt.want {
			t.Errorf("unwrap(%d) = %d, want %d", tt.in, got, tt.want)
		}
	}
	if d := ptsOffset(10, tsWrap-20); d != 30 {
		t.Errorf("ptsOffset across the wrap = %d, want 30", d)
	}
}

// FuzzTSDemux feeds arbitrary bytes through the demuxer and the FLV
// mapping: nothing may panic, and every tag made must parse. Seeds:
// testdata/fuzz/FuzzTSDemux (the head of an ffmpeg H.264 + AAC segment,
// cut and damaged).
func FuzzTSDemux(f *testing.F) {
	f.Add(bytes.Repeat([]byte{0x47, 0x40, 0x00, 0x10, 0x00}, 40))
	f.Fuzz(func(t *testing.T, b []byte) {
		tags, _, err := mapTS(b)
		if err != nil && !errors.Is(err, errTS) {
			t.Fatalf("error %v is not errTS", err)
		}
		for _, tag := range tags {
			if len(tag.Data) > len(b)+64 {
				t.Fatalf("a %d-byte tag from %d bytes", len(tag.Data), len(b))
			}
			switch tag.Type {
			case flv.TagVideo:
				v, err := flv.ParseVideo(tag.Data)
				if err != nil {
					t.Fatalf("video tag %x: %v", tag.Data, err)
				}
				if v.SequenceHeader {
					if _, err := flv.ParseAVCConfig(v.Payload); err != nil {
						t.Fatalf("avcC %x: %v", v.Payload, err)
					}
				}
			case flv.TagAudio:
				if _, err := flv.ParseAudio(tag.Data); err != nil {
					t.Fatalf("audio tag %x: %v", tag.Data, err)
				}
			default:
				t.Fatalf("tag type %v", tag.Type)
			}
		}
	})
}
