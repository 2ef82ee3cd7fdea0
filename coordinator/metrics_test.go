package coordinator

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/livegrid/livegrid/coordinator/packager"
	"github.com/livegrid/livegrid/coordinator/scheduler"
	"github.com/livegrid/livegrid/internal/config"
	"github.com/livegrid/livegrid/internal/queue"
)

// scrape GETs url and parses the text exposition.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s: %s", url, resp.Status, b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return mfs
}

var nodeMetricNames = []string{
	"livegrid_live_streams",
	"livegrid_segments_published_total",
	"livegrid_segment_gaps_total",
	"livegrid_store_errors_total",
	"livegrid_segments_outstanding",
	"livegrid_segment_transcode_seconds",
	"livegrid_encoder_fallbacks_total",
	"go_goroutines",
	"process_cpu_seconds_total",
}

func TestMetricsFromComponents(t *testing.T) {
	m := newMetrics()
	m.watch(componentStats{
		packager: func() packager.Metrics {
			return packager.Metrics{LiveStreams: 2, SegmentsPublished: 40, Gaps: 3, StoreErrors: 5}
		},
		scheduler: func() scheduler.Stats {
			return scheduler.Stats{Outstanding: 4, Queues: []queue.QueueStats{{Queue: "segments", Pending: 7}}}
		},
	})
	done := func(d time.Duration, fallbacks int) queue.Result {
		return queue.Result{
			Status: queue.StatusDone, TranscodeTime: d, Fallbacks: fallbacks,
			Renditions: []queue.RenditionResult{{Name: "720p"}, {Name: "audio"}},
		}
	}
	m.observe(done(300*time.Millisecond, 0))
	m.observe(done(1500*time.Millisecond, 1))
	m.observe(queue.Result{Status: queue.StatusQuarantined, TranscodeTime: time.Minute, Fallbacks: 1})

	srv := httptest.NewServer(m.handler(slog.New(slog.DiscardHandler)))
	defer srv.Close()
	mfs := scrape(t, srv.URL)

	for _, name := range append(nodeMetricNames, "livegrid_queue_depth", "livegrid_segments_transcoded_total") {
		if mfs[name] == nil {
			t.Errorf("%s missing from /metrics", name)
		}
	}
	value := func(name string, labels map[string]string) float64 {
		t.Helper()
		mf := mfs[name]
		if mf == nil {
			return -1
		}
	next:
		for _, mt := range mf.GetMetric() {
			for _, lp := range mt.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue next
				}
			}
			switch {
			case mt.Gauge != nil:
				return mt.GetGauge().GetValue()
			case mt.Counter != nil:
				return mt.GetCounter().GetValue()
			case mt.Histogram != nil:
				return float64(mt.GetHistogram().GetSampleCount())
			}
		}
		t.Errorf("%s%v: no such series", name, labels)
		return -1
	}
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"livegrid_live_streams", nil, 2},
		{"livegrid_segments_published_total", nil, 40},
		{"livegrid_segment_gaps_total", nil, 3},
		{"livegrid_store_errors_total", nil, 5},
		{"livegrid_segments_outstanding", nil, 4},
		{"livegrid_queue_depth", map[string]string{"queue": "segments"}, 7},
		{"livegrid_segments_transcoded_total", map[string]string{"rendition": "720p"}, 2},
		{"livegrid_segments_transcoded_total", map[string]string{"rendition": "audio"}, 2},
		{"livegrid_segment_transcode_seconds", nil, 2}, // the gap is not a sample
		{"livegrid_encoder_fallbacks_total", nil, 2},
	} {
		t.Run(tc.name+labelString(tc.labels), func(t *testing.T) {
			if got := value(tc.name, tc.labels); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}

	if problems, err := testutil.GatherAndLint(m.reg, "livegrid_live_streams", "livegrid_segment_transcode_seconds",
		"livegrid_segments_transcoded_total", "livegrid_queue_depth"); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}

func labelString(l map[string]string) string {
	var b strings.Builder
	for k, v := range l {
		b.WriteString("/" + k + "=" + v)
	}
	return b.String()
}

// TestStandaloneServesMetrics starts a standalone (embedded Redis, a
// folder store) and scrapes its /metrics without publishing.
func TestStandaloneServesMetrics(t *testing.T) {
	cfg := config.Default()
	cfg.RTMP.Addr = "127.0.0.1:0"
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	cfg.Worker.ID = "metrics-test"
	cfg.Worker.ShutdownTimeout = time.Second
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	node, err := NewStandalone(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- node.Run(ctx) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("standalone did not shut down in 30 s")
		}
	}()
	select {
	case <-node.Ready():
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("not ready in 10 s")
	}
	_, httpAddr := node.Addrs()
	mfs := scrape(t, "http://"+httpAddr.String()+"/metrics")
	for _, name := range nodeMetricNames {
		if mfs[name] == nil {
			t.Errorf("%s missing from /metrics", name)
		}
	}
}
