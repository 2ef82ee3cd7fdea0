package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/livegrid/livegrid/internal/testmedia"
)

func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{}, {"--help"}, {"transcode", "--help"}, {"encoders", "--help"}} {
		code, out, errOut := runCLI(args...)
		if code != 0 {
			t.Errorf("livegrid %v exited %d", args, code)
		}
		if !strings.Contains(out+errOut, "Usage: livegrid") {
			t.Errorf("livegrid %v printed no usage:\n%s%s", args, out, errOut)
		}
	}
}

func TestBadFlagsNameTheKey(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"nope"}, 2, `unknown command "nope"`},
		{[]string{"transcode", "--out", "x"}, 1, "'in' is required"},
		{[]string{"transcode", "--in", "x"}, 1, "'out' is required"},
		{[]string{"transcode", "--in", "x", "--out", "y", "--segment-duration", "20s"}, 1, "'segment-duration' must be between 1s and 10s"},
		{[]string{"transcode", "--in", "x", "--out", "y", "--encoder", "cuda"}, 1, "'encoder' must be auto, nvenc, qsv, vaapi or software"},
		{[]string{"transcode", "--in", "x", "--out", "y", "--log-level", "loud"}, 1, "'log-level'"},
		{[]string{"transcode", "--in", "x", "--out", "y", "--profile", "nope.yaml"}, 1, "nope.yaml"},
		{[]string{"transcode", "--bogus"}, 2, "flag provided but not defined: -bogus"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, out, errOut := runCLI(tt.args...)
			if code != tt.code || !strings.Contains(out+errOut, tt.want) {
				t.Fatalf("exit %d, output:\n%s%s\nwant exit %d and %q", code, out, errOut, tt.code, tt.want)
			}
		})
	}
}

func TestEncodersListsTheChain(t *testing.T) {
	code, out, _ := runCLI("encoders", "--log-level", "error")
	if code != 0 {
		t.Fatalf("encoders exited %d", code)
	}
	for _, want := range []string{"h264_nvenc", "h264_qsv", "h264_vaapi", "libx264", "libx265", "usable"} {
		if !strings.Contains(out, want) {
			t.Errorf("encoders output lacks %q:\n%s", want, out)
		}
	}
}

func TestTranscodeCommand(t *testing.T) {
	src := testmedia.Make(t, testmedia.Clip{Width: 640, Height: 360, Seconds: 2})
	dir := t.TempDir()
	prof := filepath.Join(dir, "tiny.yaml")
	if err := os.WriteFile(prof, []byte("name: tiny\nrungs:\n  - {name: 360p, height: 360, bitrate: 500k, preset: ultrafast}\n  - {name: 180p, height: 180, bitrate: 200k, preset: ultrafast}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	code, stdout, stderr := runCLI("transcode", "--profile", prof, "--in", src, "--out", out, "--log-level", "error")
	if code != 0 {
		t.Fatalf("exit %d:\n%s%s", code, stdout, stderr)
	}
	for _, f := range []string{"index.m3u8", "index.mpd", "360p/index.m3u8", "360p/init.mp4", "360p/00000000.m4s", "180p/index.m3u8", "audio/index.m3u8"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("missing %s", f)
		}
	}
	if !strings.Contains(stdout, filepath.Join(out, "index.m3u8")) {
		t.Errorf("output does not say where the HLS is:\n%s", stdout)
	}
}

func TestTokenSign(t *testing.T) {
	code, out, errOut := runCLI("token", "sign", "--stream", "cam1", "--ttl", "1h", "--secret", "s3cret", "--url", "http://edge:8080")
	if code != 0 || !strings.HasPrefix(out, "http://edge:8080/live/cam1/index.m3u8?") || !strings.Contains(out, "token=") || !strings.Contains(out, "expires=") {
		t.Fatalf("exit %d:\n%s%s", code, out, errOut)
	}
	if code, _, errOut := runCLI("token", "sign", "--stream", "cam1"); code != 1 || !strings.Contains(errOut, "'secret' is required") {
		t.Fatalf("without a secret: exit %d, %s", code, errOut)
	}
}
