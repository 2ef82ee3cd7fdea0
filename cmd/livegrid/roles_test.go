package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
)

// TestClusterRoleFlags checks that the cluster roles refuse a config
// without what a cluster shares, naming the key, before they start.
func TestClusterRoleFlags(t *testing.T) {
	t.Setenv("LIVEGRID_REDIS_URL", "")
	t.Setenv("LIVEGRID_STORE_URL", "")
	tests := []struct {
		name string
		run  func(context.Context, []string, io.Writer, io.Writer) error
		args []string
		want string
	}{
		{"coordinator", runCoordinator, nil, "redis.url"},
		{"coordinator", runCoordinator, []string{"--redis-url", "redis://127.0.0.1:1"}, "store.url"},
		{"coordinator", runCoordinator, []string{"--redis-url", "http://x", "--store-url", "s3://livegrid"}, "redis.url"},
		{"worker", runWorker, []string{"--store-url", "s3://livegrid"}, "redis.url"},
		{"worker", runWorker, []string{"--redis-url", "redis://127.0.0.1:1"}, "store.url"},
		{"worker", runWorker, []string{"--redis-url", "redis://127.0.0.1:1", "--store-url", "s3://livegrid", "--concurrency", "0"}, "worker.concurrency"},
	}
	for _, tt := range tests {
		t.Run(tt.name+" "+strings.Join(tt.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			err := tt.run(context.Background(), tt.args, &out, &errb)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want one naming %q", err, tt.want)
			}
		})
	}
	var errb bytes.Buffer
	for _, r := range []func(context.Context, []string, io.Writer, io.Writer) error{runCoordinator, runWorker} {
		if err := r(context.Background(), []string{"--help"}, &errb, &errb); !errors.Is(err, flag.ErrHelp) {
			t.Errorf("--help: %v", err)
		}
	}
	for _, f := range []string{"--redis-url", "--store-url", "--concurrency", "--rtmp-addr", "--config"} {
		if !strings.Contains(errb.String(), f[2:]) {
			t.Errorf("help lists no %s:\n%s", f, errb.String())
		}
	}
}
