package cmafflv

import (
	"fmt"

	"github.com/livegrid/livegrid/internal/flv"
)

// Metadata returns the body of the onMetaData script tag for a video
// track, an audio track or both (either may be nil): what players show
// and size their pipeline by before the first frame.
func Metadata(video, audio *Track, meta Meta) ([]byte, error) {
	props := flv.ECMAArray{{Key: "duration", Value: 0}}
	if video != nil {
		props = append(props,
			flv.Property{Key: "width", Value: video.Width},
			flv.Property{Key: "height", Value: video.Height},
			flv.Property{Key: "videocodecid", Value: videoCodecID(video)})
		if meta.FrameRate > 0 {
			props = append(props, flv.Property{Key: "framerate", Value: meta.FrameRate})
		}
		if meta.VideoBitrate > 0 {
			props = append(props, flv.Property{Key: "videodatarate", Value: float64(meta.VideoBitrate) / 1000})
		}
	}
	if audio != nil {
		props = append(props,
			flv.Property{Key: "audiocodecid", Value: int(flv.CodecAAC)},
			flv.Property{Key: "audiosamplerate", Value: audio.SampleRate},
			flv.Property{Key: "audiosamplesize", Value: 16},
			flv.Property{Key: "audiochannels", Value: audio.Channels},
			flv.Property{Key: "stereo", Value: audio.Channels >= 2})
		if meta.AudioBitrate > 0 {
			props = append(props, flv.Property{Key: "audiodatarate", Value: float64(meta.AudioBitrate) / 1000})
		}
	}
	props = append(props, flv.Property{Key: "encoder", Value: "livegrid"})
	body, err := flv.EncodeMetadata(props)
	if err != nil {
		return nil, fmt.Errorf("cmafflv: metadata: %w", err)
	}
	return body, nil
}

// videoCodecID is onMetaData's videocodecid: the legacy CodecID for
// H.264, the FourCC as a number for enhanced codecs.
func videoCodecID(t *Track) uint32 {
	if t.VideoCodec == flv.CodecH264 {
		return uint32(flv.CodecH264)
	}
	c := t.fourCC()
	return uint32(c[0])<<24 | uint32(c[1])<<16 | uint32(c[2])<<8 | uint32(c[3])
}
