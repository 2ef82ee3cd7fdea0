package ingest

import (
	"bytes"
	"errors"
	"io"
	"net/url"
	"testing"

	"github.com/livegrid/livegrid/internal/flv"
	"github.com/livegrid/livegrid/internal/hub"
	"github.com/yutopp/go-rtmp/message"
)

func TestParseStreamKey(t *testing.T) {
	tests := []struct {
		raw       string
		wantName  string
		wantQuery url.Values
		wantErr   error
	}{
		{"test", "test", url.Values{}, nil},
		{"test?key=abc", "test", url.Values{"key": {"abc"}}, nil},
		{"cam-1.hd?token=t%2Bx&expires=1700000000", "cam-1.hd", url.Values{"token": {"t+x"}, "expires": {"1700000000"}}, nil},
		{"", "", nil, hub.ErrBadName},
		{"?key=abc", "", nil, hub.ErrBadName},
		{"a/b", "", nil, hub.ErrBadName},
		{"../x", "", nil, hub.ErrBadName},
		{"test?key=%zz", "", nil, url.EscapeError("%zz")},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			name, q, err := parseStreamKey(tt.raw)
			if tt.wantErr != nil {
				var esc url.EscapeError
				if !errors.Is(err, tt.wantErr) && !errors.As(err, &esc) {
					t.Fatalf("err %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil || name != tt.wantName || !equalQuery(q, tt.wantQuery) {
				t.Errorf("parseStreamKey = %q, %v, %v; want %q, %v", name, q, err, tt.wantName, tt.wantQuery)
			}
		})
	}
}

func TestParseApp(t *testing.T) {
	tests := []struct {
		raw, app string
		query    url.Values
	}{
		{"live", "live", url.Values{}},
		{"live/", "live", url.Values{}},
		{"live?key=abc", "live", url.Values{"key": {"abc"}}},
		{"", "", url.Values{}},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			app, q := parseApp(tt.raw)
			if app != tt.app || !equalQuery(q, tt.query) {
				t.Errorf("parseApp(%q) = %q, %v; want %q, %v", tt.raw, app, q, tt.app, tt.query)
			}
		})
	}
}

func TestMergeQuery(t *testing.T) {
	got := mergeQuery(url.Values{"key": {"stream"}}, url.Values{"key": {"app"}, "token": {"t"}})
	if want := (url.Values{"key": {"stream"}, "token": {"t"}}); !equalQuery(got, want) {
		t.Errorf("mergeQuery = %v, want %v", got, want)
	}
}

func TestMediaTagCopies(t *testing.T) {
	tests := []struct {
		name    string
		payload io.Reader
		wantErr error
	}{
		{"buffer", bytes.NewBuffer([]byte{0x17, 1, 0, 0, 0, 9}), nil},
		{"plain reader", io.MultiReader(bytes.NewReader([]byte{0x17, 1}), bytes.NewReader([]byte{0, 0, 0, 9})), nil},
		{"empty", bytes.NewBuffer(nil), errBadMessage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var src []byte
			if b, ok := tt.payload.(*bytes.Buffer); ok {
				src = b.Bytes()
			}
			tag, err := mediaTag(flv.TagVideo, 40, tt.payload)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if tag.Type != flv.TagVideo || tag.Timestamp != 40 || !bytes.Equal(tag.Data, []byte{0x17, 1, 0, 0, 0, 9}) {
				t.Errorf("tag %+v", tag)
			}
			if src != nil {
				src[0] = 0 // go-rtmp reuses its buffer
				if tag.Data[0] != 0x17 {
					t.Error("the tag aliases the message buffer")
				}
			}
		})
	}
}

func TestScriptRoundTrip(t *testing.T) {
	meta, err := flv.EncodeMetadata(flv.ECMAArray{{Key: "width", Value: 320.0}, {Key: "height", Value: 180.0}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		payload []byte
		wantErr error
	}{
		{"onMetaData", meta, nil},
		{"with @setDataFrame", append([]byte("\x02\x00\x0d@setDataFrame"), meta...), nil},
		{"not a string first", []byte{0x00, 0, 0, 0, 0, 0, 0, 0, 0}, errBadMessage},
		{"truncated name", []byte{0x02, 0x00, 0x20, 'o', 'n'}, errBadMessage},
		{"truncated value", meta[:len(meta)-4], errBadMessage},
		{"empty", nil, errBadMessage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tag, err := scriptTag(7, &message.NetStreamSetDataFrame{Payload: tt.payload})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if !bytes.Equal(tag.Data, meta) || tag.Timestamp != 7 || tag.Type != flv.TagScript {
				t.Fatalf("tag %+v", tag)
			}
			// Back out to a player: a data message named onMetaData whose
			// encoding is the tag body again.
			csid, msg, err := tagMessage(tag)
			if err != nil {
				t.Fatal(err)
			}
			dm, ok := msg.(*message.DataMessage)
			if !ok || csid != csidData || dm.Name != "onMetaData" {
				t.Fatalf("message %T %+v on chunk stream %d", msg, msg, csid)
			}
			var out bytes.Buffer
			if err := message.NewEncoder(&out).Encode(msg); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out.Bytes(), meta) {
				t.Errorf("encoded %x, want %x", out.Bytes(), meta)
			}
		})
	}
}

func TestTagMessage(t *testing.T) {
	tests := []struct {
		tag      flv.Tag
		wantCSID int
		wantType message.TypeID
		wantErr  error
	}{
		{flv.Tag{Type: flv.TagAudio, Data: []byte{0xaf, 1, 2}}, csidAudio, message.TypeIDAudioMessage, nil},
		{flv.Tag{Type: flv.TagVideo, Data: []byte{0x27, 1, 0, 0, 0, 5}}, csidVideo, message.TypeIDVideoMessage, nil},
		{flv.Tag{Type: 7, Data: []byte{1}}, 0, 0, errBadMessage},
	}
	for _, tt := range tests {
		t.Run(tt.tag.Type.String(), func(t *testing.T) {
			csid, msg, err := tagMessage(tt.tag)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			var out bytes.Buffer
			if err := message.NewEncoder(&out).Encode(msg); err != nil {
				t.Fatal(err)
			}
			if csid != tt.wantCSID || msg.TypeID() != tt.wantType || !bytes.Equal(out.Bytes(), tt.tag.Data) {
				t.Errorf("chunk stream %d, type %d, payload %x", csid, msg.TypeID(), out.Bytes())
			}
		})
	}
}

// FuzzScriptData feeds publisher-controlled @setDataFrame payloads
// through both directions of the mapping: no panic, and what is accepted
// goes back out unchanged.
func FuzzScriptData(f *testing.F) {
	meta, _ := flv.EncodeMetadata(flv.ECMAArray{{Key: "width", Value: 320.0}})
	f.Add(meta)
	f.Add([]byte("\x02\x00\x0d@setDataFrame"))
	f.Add([]byte{0x02, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, payload []byte) {
		tag, err := scriptTag(0, &message.NetStreamSetDataFrame{Payload: payload})
		if err != nil {
			return
		}
		_, msg, err := tagMessage(tag)
		if err != nil {
			t.Fatalf("accepted script data does not map back: %v", err)
		}
		var out bytes.Buffer
		if err := message.NewEncoder(&out).Encode(msg); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), tag.Data) {
			t.Fatalf("round trip %x -> %x", tag.Data, out.Bytes())
		}
	})
}

// FuzzParseStreamKey checks that whatever a client sends as a stream
// name, an accepted name is one the hub takes.
func FuzzParseStreamKey(f *testing.F) {
	for _, s := range []string{"test", "test?key=abc", "a?b?c", "../x", "%00", "test?token=a&expires=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		name, _, err := parseStreamKey(raw)
		if err == nil {
			if verr := hub.ValidateName(name); verr != nil {
				t.Fatalf("accepted %q: %v", name, verr)
			}
		}
	})
}
