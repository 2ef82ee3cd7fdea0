package store_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/livegrid/livegrid/internal/store"
	"github.com/livegrid/livegrid/internal/store/fsstore"
)

func TestParseURL(t *testing.T) {
	tests := []struct {
		url  string
		want store.Location
	}{
		{"file:///var/lib/livegrid", store.Location{Scheme: "file", Dir: "/var/lib/livegrid"}},
		{"file://localhost/var/lib/livegrid/", store.Location{Scheme: "file", Dir: "/var/lib/livegrid"}},
		{"file:data", store.Location{Scheme: "file", Dir: "data"}},
		{"file:./data/../store", store.Location{Scheme: "file", Dir: "store"}},
		{"file:///srv/live%20data", store.Location{Scheme: "file", Dir: "/srv/live data"}},
		{"s3://livegrid", store.Location{Scheme: "s3", Bucket: "livegrid", Endpoint: "s3.amazonaws.com", Secure: true}},
		{"s3://livegrid/", store.Location{Scheme: "s3", Bucket: "livegrid", Endpoint: "s3.amazonaws.com", Secure: true}},
		{"s3://livegrid?endpoint=http://127.0.0.1:9000", store.Location{Scheme: "s3", Bucket: "livegrid", Endpoint: "127.0.0.1:9000"}},
		{"s3://livegrid?endpoint=https://minio.example.com/", store.Location{Scheme: "s3", Bucket: "livegrid", Endpoint: "minio.example.com", Secure: true}},
		{"s3://live.grid-01?endpoint=http://[::1]:9000&region=eu-west-1&prefix=tenant-a/live",
			store.Location{Scheme: "s3", Bucket: "live.grid-01", Endpoint: "[::1]:9000", Region: "eu-west-1", Prefix: "tenant-a/live/"}},
		{"s3://livegrid?region=us-east-2&prefix=/a/", store.Location{Scheme: "s3", Bucket: "livegrid", Endpoint: "s3.amazonaws.com", Secure: true, Region: "us-east-2", Prefix: "a/"}},
	}
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			got, err := store.ParseURL(tc.url)
			if err != nil {
				t.Fatalf("ParseURL: %v", err)
			}
			if got != tc.want {
				t.Errorf("ParseURL = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseURLRefuses(t *testing.T) {
	tests := []struct {
		url  string
		want string // the error names this
	}{
		{"", "empty"},
		{"/var/lib/livegrid", "no scheme"},
		{"ftp://host/x", `scheme "ftp"`},
		{"http://bucket", `scheme "http"`},
		{"file://otherhost/x", `host "otherhost"`},
		{"file://", "no path"},
		{"file:///data?prefix=x", "'prefix'"},
		{"file:///data#frag", "fragment"},
		{"s3://", "no bucket"},
		{"s3://ab", `bucket "ab"`},
		{"s3://Livegrid", `bucket "Livegrid"`},
		{"s3://live_grid", `bucket "live_grid"`},
		{"s3://-livegrid", `bucket "-livegrid"`},
		{"s3://live..grid", `bucket "live..grid"`},
		{"s3://livegrid/some/path", "'prefix'"},
		{"s3://livegrid?endpont=http://h:9000", "'endpont'"},
		{"s3://livegrid?endpoint=http://h:9000&bucket=x", "'bucket'"},
		{"s3://livegrid?access_key=AKIA", "'access_key'"},
		{"s3://livegrid?endpoint=", "'endpoint' is empty"},
		{"s3://livegrid?endpoint=h:9000", "'endpoint'"},
		{"s3://livegrid?endpoint=ftp://h:9000", "'endpoint'"},
		{"s3://livegrid?endpoint=http://h:9000/minio", "'endpoint'"},
		{"s3://livegrid?endpoint=http://h:9000&endpoint=http://g:9000", "'endpoint' given 2 times"},
		{"s3://livegrid?region=", "'region'"},
		{"s3://livegrid?region=us east", "'region'"},
		{"s3://livegrid?prefix=", "'prefix' is empty"},
		{"s3://livegrid?prefix=a/../b", "'prefix'"},
		{"s3://livegrid?prefix=a%00b", "'prefix'"},
		{"s3://livegrid?a=%zz", "bad query"},
	}
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			_, err := store.ParseURL(tc.url)
			if !errors.Is(err, store.ErrBadURL) {
				t.Fatalf("ParseURL error = %v, want ErrBadURL", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseURL error = %q, want it to name %s", err, tc.want)
			}
		})
	}
}

func TestParseURLHidesSecrets(t *testing.T) {
	for _, u := range []string{
		"s3://AKIAEXAMPLE:hunter2secret@livegrid",
		"s3://livegrid?endpoint=http://AKIAEXAMPLE:hunter2secret@h:9000",
		"s3://livegrid?endpoint=ftp://AKIAEXAMPLE:hunter2secret@h:9000",
		"s3://AKIAEXAMPLE:hunter2secret@livegrid\x7f",
	} {
		_, err := store.ParseURL(u)
		if err == nil {
			t.Errorf("ParseURL(%q) succeeded", u)
			continue
		}
		if strings.Contains(err.Error(), "hunter2secret") {
			t.Errorf("ParseURL error repeats the secret: %v", err)
		}
	}
}

func TestOpenFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	st, err := store.Open(context.Background(), "file://"+filepath.ToSlash(dir), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	fst, ok := st.(*fsstore.Store)
	if !ok || fst.Root() != dir {
		t.Errorf("Open = %T rooted at %v, want an fsstore at %s", st, fst, dir)
	}
}

func TestOpenRefuses(t *testing.T) {
	noEnv := func(string) string { return "" }
	tests := []struct {
		name, url string
		want      error
	}{
		{"bad URL", "s3://livegrid?colour=blue", store.ErrBadURL},
		{"no credentials", "s3://livegrid?endpoint=http://127.0.0.1:1", store.ErrNoCredentials},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := store.Open(context.Background(), tc.url, store.Options{Getenv: noEnv})
			if !errors.Is(err, tc.want) {
				t.Errorf("Open error = %v, want %v", err, tc.want)
			}
		})
	}
}
