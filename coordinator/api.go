package coordinator

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/livegrid/livegrid/internal/auth"
	"github.com/livegrid/livegrid/internal/config"
	"github.com/livegrid/livegrid/internal/hub"
	"github.com/livegrid/livegrid/internal/stats"
)

// viewers counts the node's own viewers (HLS, DASH and HTTP-FLV from its
// origin), reports them to Redis beside the edges' reports, and serves
// the read side of the management API from the hub and the merged
// reports. Standalone runs the same code on its embedded Redis.
type viewers struct {
	cfg      *config.Config
	hub      *hub.Hub
	tracker  *stats.Tracker
	reporter *stats.Reporter
	agg      *stats.Aggregator
	now      func() time.Time
	log      *slog.Logger
	ladders  *ladderOverrides // set by the node: the API's per-stream ladders
}

// newViewers wires viewer statistics for a node whose HTTP listens on
// httpAddr, and registers their metrics with m. Run it with run.
func newViewers(cfg *config.Config, h *hub.Hub, rdb redis.UniversalClient, m *metrics, role string, httpAddr net.Addr, log *slog.Logger) *viewers {
	live := func(name string) (time.Time, bool) {
		s, ok := h.Lookup(name)
		if !ok {
			return time.Time{}, false
		}
		return s.Stats().Started, true
	}
	log = log.With("component", "viewers")
	tr := stats.NewTracker(stats.Config{
		HTTPWindow: max(3*cfg.Segments.Duration, stats.DefaultHTTPWindow),
		Live:       live,
	})
	node := nodeName(role, httpAddr)
	v := &viewers{
		cfg: cfg, hub: h, tracker: tr, now: time.Now, log: log,
		reporter: &stats.Reporter{Redis: rdb, Tracker: tr, Node: node, Log: log},
		agg:      &stats.Aggregator{Redis: rdb, Local: tr, Self: node, Live: live, Log: log},
	}
	m.reg.MustRegister(viewerCollector{tr})
	return v
}

// nodeName names this process in the viewer reports: role, host and
// HTTP port, unique among the nodes sharing a Redis.
func nodeName(role string, httpAddr net.Addr) string {
	host, err := os.Hostname()
	if err != nil {
		host = "localhost"
	}
	port := httpAddr.String()
	if _, p, err := net.SplitHostPort(port); err == nil {
		port = p
	}
	return role + "@" + host + ":" + port
}

// run reports the node's viewers until ctx ends.
func (v *viewers) run(ctx context.Context) {
	_ = v.reporter.Run(ctx) // logs its own failures
}

// count wraps the /live/ handler so its viewers are counted; policy's
// trusted proxies name the clients behind a load balancer.
func (v *viewers) count(policy *auth.Policy, next http.Handler) http.Handler {
	var o stats.HTTPOptions
	if policy != nil {
		o.TrustedProxies = policy.TrustedProxies
	}
	return v.tracker.Middleware(next, o)
}

// apiStream is one stream in the management API: its viewers over the
// cluster and, when it is published to this node, its publish session.
type apiStream struct {
	stats.StreamStats
	// Live is true while the stream is published to this node; a stream
	// watched through edges but published elsewhere, or just ended, is
	// listed with Live false while it has viewers.
	Live bool `json:"live"`
	// Ladder is the transcode profile the stream's ladder comes from.
	Ladder    string        `json:"ladder,omitempty"`
	Publisher *apiPublisher `json:"publisher,omitempty"`
}

type apiPublisher struct {
	RemoteAddr string `json:"remote_addr"`
	BytesIn    uint64 `json:"bytes_in"`
	Audio      bool   `json:"audio"`
	Video      bool   `json:"video"`
}

type apiStreamList struct {
	Streams []apiStream `json:"streams"`
	// Partial says other nodes' viewers could not be read (Redis down):
	// the numbers are this node's alone.
	Partial bool `json:"partial,omitempty"`
}

type apiError struct {
	Error string `json:"error"`
}

// apiTimeout bounds the Redis reads behind one API request.
const apiTimeout = 3 * time.Second

// api is the read side of the management API under /api/v1/:
// GET /api/v1/streams and GET /api/v1/streams/{stream}. Other paths
// under it are JSON 404s, other methods JSON 405s.
func (v *viewers) api() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/api/v1/streams", func(w http.ResponseWriter, r *http.Request) {
		if !readOnly(w, r) {
			return
		}
		list, partial := v.streams(r.Context())
		writeJSON(w, http.StatusOK, apiStreamList{Streams: list, Partial: partial})
	})
	mux.HandleFunc("/api/v1/streams/{stream}", func(w http.ResponseWriter, r *http.Request) {
		if !readOnly(w, r) {
			return
		}
		name := r.PathValue("stream")
		if err := hub.ValidateName(name); err != nil {
			writeJSON(w, http.StatusBadRequest, apiError{Error: err.Error()})
			return
		}
		list, _ := v.streams(r.Context())
		i := slices.IndexFunc(list, func(s apiStream) bool { return s.Stream == name })
		if i < 0 {
			writeJSON(w, http.StatusNotFound, apiError{Error: fmt.Sprintf("stream %q not found", name)})
			return
		}
		writeJSON(w, http.StatusOK, list[i])
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, apiError{Error: "no such API resource: " + r.URL.Path})
	})
	return mux
}

// streams lists the live streams and the watched ones, sorted by name;
// partial is set when only this node's viewers could be read.
func (v *viewers) streams(ctx context.Context) (list []apiStream, partial bool) {
	ctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	watched, err := v.agg.Streams(ctx)
	if err != nil && !errors.Is(err, context.Canceled) {
		v.log.Warn("viewers of other nodes unavailable", "err", err)
		partial = true
	}
	byName := make(map[string]stats.StreamStats, len(watched))
	for _, s := range watched {
		byName[s.Stream] = s
	}
	now := v.now()
	for _, hs := range v.hub.Streams() {
		s, ok := byName[hs.Name]
		if !ok {
			s = stats.StreamStats{Stream: hs.Name, ClientIPs: []string{}}
		}
		delete(byName, hs.Name)
		s.StartTime = hs.Started
		s.DurationS = math.Round(max(now.Sub(hs.Started), 0).Seconds()*1000) / 1000
		list = append(list, apiStream{
			StreamStats: s, Live: true, Ladder: v.ladders.profileFor(v.cfg, hs.Name),
			Publisher: &apiPublisher{RemoteAddr: hs.PublisherAddr, BytesIn: hs.BytesIn, Audio: hs.Audio, Video: hs.Video},
		})
	}
	for _, s := range byName {
		if s.Viewers > 0 {
			list = append(list, apiStream{StreamStats: s})
		}
	}
	slices.SortFunc(list, func(a, b apiStream) int { return cmp.Compare(a.Stream, b.Stream) })
	if list == nil {
		list = []apiStream{}
	}
	return list, partial
}

// readOnly refuses methods other than GET and HEAD with a JSON 405.
func readOnly(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	writeJSON(w, http.StatusMethodNotAllowed, apiError{Error: "method " + r.Method + " not allowed"})
	return false
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // only plain data is written
		code, b = http.StatusInternalServerError, []byte(`{"error":"encode response"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

// viewerCollector exports the node's own viewers at scrape time; the
// cluster's totals are a sum over nodes in PromQL.
type viewerCollector struct{ t *stats.Tracker }

var (
	viewersDesc = prometheus.NewDesc("livegrid_viewers",
		"Current viewers on this node, per stream and protocol.", []string{"stream", "protocol"}, nil)
	viewerBytesDesc = prometheus.NewDesc("livegrid_viewer_bytes_total",
		"Bytes this node sent to viewers, per stream.", []string{"stream"}, nil)
	viewerPlaysDesc = prometheus.NewDesc("livegrid_viewer_plays_total",
		"Plays this node started, per stream.", []string{"stream"}, nil)
)

// Describe implements prometheus.Collector.
func (c viewerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- viewersDesc
	ch <- viewerBytesDesc
	ch <- viewerPlaysDesc
}

// Collect implements prometheus.Collector.
func (c viewerCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.t.Snapshot() {
		for _, p := range stats.Protocols {
			ch <- prometheus.MustNewConstMetric(viewersDesc, prometheus.GaugeValue, float64(s.ByProtocol.Get(p)), s.Stream, string(p))
		}
		ch <- prometheus.MustNewConstMetric(viewerBytesDesc, prometheus.CounterValue, float64(s.BytesOut), s.Stream)
		ch <- prometheus.MustNewConstMetric(viewerPlaysDesc, prometheus.CounterValue, float64(s.PlaysTotal), s.Stream)
	}
}
