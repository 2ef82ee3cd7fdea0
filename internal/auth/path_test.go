package auth

import (
	"errors"
	"testing"
)

func TestCleanPath(t *testing.T) {
	tests := []struct {
		raw  string
		want string // "" means refused
	}{
		{"/live/cam1/index.m3u8", "/live/cam1/index.m3u8"},
		{"/live/cam1.flv", "/live/cam1.flv"},
		{"/", "/"},
		{"/live//cam1///index.m3u8", "/live/cam1/index.m3u8"},
		{"/live/cam1/", "/live/cam1/"},
		{"/live/caf%C3%A9/index.m3u8", "/live/café/index.m3u8"},
		{"/live/a%20b/x", "/live/a b/x"},
		{"/live/v1.2/seg..ts", "/live/v1.2/seg..ts"},
		{"/live/.hidden", "/live/.hidden"},
		{"/live/cam1/a;b=c", "/live/cam1/a;b=c"},

		{"", ""},
		{"live/cam1", ""},
		{"/live/../etc/passwd", ""},
		{"/live/..", ""},
		{"/live/./cam1", ""},
		{"/..", ""},
		{"/live/%2e%2e/secret", ""},
		{"/live/%2E%2E/secret", ""},
		{"/live/.%2e/secret", ""},
		{"/live/%2e./secret", ""},
		{"/live/%2e/secret", ""},
		{"/live/..%2fsecret", ""},
		{"/live/..%2Fsecret", ""},
		{"/live/cam1%2f..%2f..%2fetc", ""},
		{"/live/..\\secret", ""},
		{"/live\\..\\secret", ""},
		{"/live/%5c..%5csecret", ""},
		{"/live/%5C..", ""},
		{"/live/%252e%252e/secret", ""},
		{"/live/%25", ""},
		{"/live/..;/secret", ""},
		{"/live/.;x/secret", ""},
		{"/live/.../secret", ""},
		{"/live/.. /secret", ""},
		{"/live/%c0%ae%c0%ae/secret", ""},
		{"/live/%ef%bc%8e%ef%bc%8e/secret", ""},
		{"/live/%00/x", ""},
		{"/live/a\x00b", ""},
		{"/live/%0d%0aSet-Cookie:x", ""},
		{"/live/%zz", ""},
		{"/live/%2", ""},
		{"/live/x?y", ""},
		{"/live/x#y", ""},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			got, err := CleanPath(tt.raw)
			if tt.want == "" {
				if !errors.Is(err, ErrBadPath) {
					t.Fatalf("CleanPath = %q, %v; want ErrBadPath", got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("CleanPath = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
