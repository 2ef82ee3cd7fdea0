package queue

import (
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func validTask() Task {
	return Task{
		V: PayloadVersion, Stream: "cam1", Session: "s-20240501", Seq: 7,
		Source:          Source{Key: "src/cam1/7.flv", Format: "flv"},
		Ladder:          Ladder{Profile: "default", Ref: "builtin:default"},
		SegmentDuration: 2 * time.Second, Start: 180000, End: 360000,
	}
}

func TestTaskID(t *testing.T) {
	tests := []struct {
		name            string
		stream, session string
		seq             uint64
		want            string
	}{
		{"plain", "cam1", "s1", 0, "seg:cam1:s1:0"},
		{"large seq", "cam1", "s1", 1<<63 + 5, "seg:cam1:s1:9223372036854775813"},
		{"dots and dashes", "a.b-c_d", "x-1", 42, "seg:a.b-c_d:x-1:42"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := TaskID(tt.stream, tt.session, tt.seq)
			if got != tt.want {
				t.Fatalf("TaskID = %q, want %q", got, tt.want)
			}
			if again := TaskID(tt.stream, tt.session, tt.seq); again != got {
				t.Fatalf("TaskID not deterministic: %q then %q", got, again)
			}
		})
	}
	// Different segments never share an id.
	seen := map[string]bool{}
	for _, st := range []string{"a", "a1", "a.1"} {
		for _, se := range []string{"1", "11", "1.1"} {
			for seq := uint64(0); seq < 12; seq++ {
				id := TaskID(st, se, seq)
				if seen[id] {
					t.Fatalf("id %q repeats", id)
				}
				seen[id] = true
			}
		}
	}
}

func TestAttemptID(t *testing.T) {
	tests := []struct {
		attempt int
		want    string
	}{{0, "seg:a:b:1"}, {-1, "seg:a:b:1"}, {1, "seg:a:b:1:r1"}, {3, "seg:a:b:1:r3"}}
	for _, tt := range tests {
		if got := AttemptID("seg:a:b:1", tt.attempt); got != tt.want {
			t.Errorf("AttemptID(%d) = %q, want %q", tt.attempt, got, tt.want)
		}
	}
}

func TestValidName(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"cam1", true}, {"A.b_c-9", true}, {"", false}, {".hidden", false}, {"..", false},
		{"a/b", false}, {"a:b", false}, {"a b", false}, {"é", false}, {"{x}", false},
		{strings.Repeat("a", 128), true}, {strings.Repeat("a", 129), false},
	}
	for _, tt := range tests {
		if got := ValidName(tt.in); got != tt.want {
			t.Errorf("ValidName(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestTaskValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Task)
		field  string // '' quoted in the error; empty means valid
	}{
		{"valid", func(*Task) {}, ""},
		{"inline data", func(t *Task) { t.Source = Source{Data: []byte("FLV"), Format: "flv"} }, ""},
		{"origin url", func(t *Task) { t.Source = Source{URL: "http://origin:8080/src/7.flv", Format: "flv"} }, ""},
		{"unknown end", func(t *Task) { t.End = -1 }, ""},
		{"newer version", func(t *Task) { t.V = PayloadVersion + 1 }, "v"},
		{"no version", func(t *Task) { t.V = 0 }, "v"},
		{"stream path", func(t *Task) { t.Stream = "../etc" }, "stream"},
		{"empty session", func(t *Task) { t.Session = "" }, "session"},
		{"no source", func(t *Task) { t.Source = Source{Format: "flv"} }, "source"},
		{"no format", func(t *Task) { t.Source.Format = "" }, "source.format"},
		{"odd format", func(t *Task) { t.Source.Format = "flv -i x" }, "source.format"},
		{"file url", func(t *Task) { t.Source = Source{URL: "file:///etc/passwd", Format: "flv"} }, "source.url"},
		{"no ladder", func(t *Task) { t.Ladder = Ladder{Profile: "x"} }, "ladder"},
		{"zero duration", func(t *Task) { t.SegmentDuration = 0 }, "segment_duration"},
		{"huge duration", func(t *Task) { t.SegmentDuration = time.Hour }, "segment_duration"},
		{"end before start", func(t *Task) { t.End = t.Start }, "end"},
		{"end below -1", func(t *Task) { t.End = -2 }, "end"},
		{"negative attempt", func(t *Task) { t.Attempt = -1 }, "attempt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			task := validTask()
			tt.change(&task)
			err := task.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrBadPayload) || !strings.Contains(err.Error(), "'"+tt.field+"'") {
				t.Fatalf("Validate = %v, want ErrBadPayload naming '%s'", err, tt.field)
			}
		})
	}
}

func TestTaskRoundTrip(t *testing.T) {
	task := validTask()
	task.V = 0 // Marshal sets it
	task.Source.Data = []byte{0, 1, 2, 0xff}
	task.Discontinuity = true
	task.Attempt, task.PriorFailures = 1, 1
	task.EnqueuedAt = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	b, err := task.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeTask(b)
	if err != nil {
		t.Fatal(err)
	}
	task.V = PayloadVersion
	if got.ID() != task.ID() || string(got.Source.Data) != string(task.Source.Data) || got.End != task.End ||
		!got.Discontinuity || got.Attempt != 1 || got.PriorFailures != 1 || !got.EnqueuedAt.Equal(task.EnqueuedAt) ||
		got.SegmentDuration != task.SegmentDuration || got.Ladder != task.Ladder {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, task)
	}
}

func TestDecodeTaskPoison(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"not json", "\x00\x01"},
		{"empty object", "{}"},
		{"wrong type", `{"v":1,"stream":5}`},
		{"truncated", `{"v":1,"stream":"a"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := DecodeTask([]byte(tt.in)); !errors.Is(err, ErrBadPayload) {
				t.Fatalf("DecodeTask = %v, want ErrBadPayload", err)
			}
		})
	}
}

func TestLadderLoad(t *testing.T) {
	yaml := "name: tiny\nrungs:\n  - {name: 180p, height: 180, bitrate: 200k, preset: ultrafast}\n"
	tests := []struct {
		name   string
		ladder Ladder
		rungs  int // 0: want ErrBadPayload
	}{
		{"yaml", Ladder{Profile: "tiny", YAML: yaml}, 1},
		{"builtin", Ladder{Profile: "default", Ref: "builtin:default"}, 4},
		{"yaml wins", Ladder{Profile: "tiny", YAML: yaml, Ref: "builtin:default"}, 1},
		{"bad yaml", Ladder{Profile: "x", YAML: "name: x\nrungs: 5\n"}, 0},
		{"unknown builtin", Ladder{Ref: "builtin:nope"}, 0},
		{"file path refused", Ladder{Ref: "/etc/livegrid/ladder.yaml"}, 0},
		{"nothing", Ladder{Profile: "x"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := tt.ladder.Load()
			if tt.rungs == 0 {
				if !errors.Is(err, ErrBadPayload) {
					t.Fatalf("Load = %v, want ErrBadPayload", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(l.Rungs) != tt.rungs {
				t.Fatalf("%d rungs, want %d", len(l.Rungs), tt.rungs)
			}
		})
	}
}

func TestDecodeResult(t *testing.T) {
	ok := Result{TaskID: TaskID("cam1", "s1", 3), Stream: "cam1", Session: "s1", Seq: 3, Status: StatusDone}
	tests := []struct {
		name   string
		change func(*Result)
		ok     bool
	}{
		{"valid", func(*Result) {}, true},
		{"id of another segment", func(r *Result) { r.Seq = 4 }, false},
		{"bad stream", func(r *Result) { r.Stream = "a/b" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ok
			tt.change(&r)
			b, err := r.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeResult(b)
			if tt.ok != (err == nil) {
				t.Fatalf("DecodeResult = %v, want ok=%v", err, tt.ok)
			}
			if tt.ok && (got.V != PayloadVersion || got.TaskID != r.TaskID) {
				t.Fatalf("got %+v", got)
			}
		})
	}
}

func TestKeys(t *testing.T) {
	tests := []struct{ got, want string }{
		{WorkerQueue("w1"), "worker:w1"},
		{InitKey("cam1", "s1", "720p", "0123456789abcdef0123"), "live/cam1/s1/720p/init-0123456789abcdef.mp4"},
		{SegmentKey("cam1", "s1", "720p", 12, 0), "live/cam1/s1/720p/00000012-0.m4s"},
		{SegmentKey("cam1", "s1", "audio", 12, 1), "live/cam1/s1/audio/00000012-1.m4s"},
		{ResultsKey("cam1"), "livegrid:results:{cam1}"},
		{DoneKey("cam1", TaskID("cam1", "s1", 3)), "livegrid:done:{cam1}:cam1:s1:3"},
		{streamName(ResultsKey("cam.1")), "cam.1"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}
