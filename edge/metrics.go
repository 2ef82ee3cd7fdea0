package edge

import (
	"log/slog"
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/livegrid/livegrid/internal/auth"
)

// metrics is the edge's Prometheus registry. Responses are counted as
// they finish; the cache, the origins and the play policy are read from
// their own counters at scrape time (edgeStats).
type metrics struct {
	reg       *prometheus.Registry
	responses *prometheus.CounterVec
	served    *prometheus.CounterVec
}

func newMetrics(rl *relay, c *cache, p *pool, policy *auth.Policy) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "livegrid_edge_responses_total",
			Help: "Responses under /live/, by protocol and status code.",
		}, []string{"protocol", "code"}),
		served: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "livegrid_edge_served_bytes_total",
			Help: "Body bytes sent to viewers under /live/, by protocol.",
		}, []string{"protocol"}),
	}
	m.reg.MustRegister(m.responses, m.served,
		&edgeStats{relay: rl.stats, cache: c.stats, origins: p.stats, denials: policy.Denials},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// response counts one finished /live/ response.
func (m *metrics) response(protocol string, status int, bytes int64) {
	m.responses.WithLabelValues(protocol, strconv.Itoa(status)).Inc()
	m.served.WithLabelValues(protocol).Add(float64(bytes))
}

func (m *metrics) handler(log *slog.Logger) http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		Registry: m.reg,
	})
}

var (
	descCache = prometheus.NewDesc("livegrid_edge_cache_requests_total",
		"Cacheable requests by outcome: hit (fresh in cache), miss (fetched from an origin), coalesced (waited for another viewer's fetch), stale (served past freshness because no origin answered), pass (too big to cache, streamed through), error (no origin answered).",
		[]string{"result"}, nil)
	descCacheObjects   = prometheus.NewDesc("livegrid_edge_cache_objects", "Objects in the cache.", nil, nil)
	descCacheBytes     = prometheus.NewDesc("livegrid_edge_cache_bytes", "Bytes the cached objects take.", nil, nil)
	descCacheCapacity  = prometheus.NewDesc("livegrid_edge_cache_capacity_bytes", "The cache's bound (edge.cache_bytes).", nil, nil)
	descCacheEvictions = prometheus.NewDesc("livegrid_edge_cache_evictions_total", "Objects evicted to make room.", nil, nil)
	descOriginReqs     = prometheus.NewDesc("livegrid_edge_origin_requests_total", "Requests sent to each origin (probes aside).", []string{"origin"}, nil)
	descOriginErrors   = prometheus.NewDesc("livegrid_edge_origin_errors_total", "Failed origin requests by kind: connect, timeout, status (5xx), body.", []string{"origin", "kind"}, nil)
	descOriginUp       = prometheus.NewDesc("livegrid_edge_origin_up", "1 while the origin is considered up.", []string{"origin"}, nil)
	descOriginCurrent  = prometheus.NewDesc("livegrid_edge_origin_current", "1 for the origin fetches go to first.", []string{"origin"}, nil)
	descDenials        = prometheus.NewDesc("livegrid_edge_play_denials_total", "Play requests refused by the access policy, by reason.", []string{"reason"}, nil)
)

// edgeStats is a prometheus.Collector over the components' snapshots, so
// no component pushes into Prometheus.
type edgeStats struct {
	relay   func() relayStats
	cache   func() cacheStats
	origins func() []originStats
	denials func() map[string]uint64
}

func (s *edgeStats) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descCache, descCacheObjects, descCacheBytes, descCacheCapacity, descCacheEvictions,
		descOriginReqs, descOriginErrors, descOriginUp, descOriginCurrent, descDenials} {
		ch <- d
	}
}

func (s *edgeStats) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	r := s.relay()
	counter(descCache, r.hits, "hit")
	counter(descCache, r.misses, "miss")
	counter(descCache, r.coalesced, "coalesced")
	counter(descCache, r.stale, "stale")
	counter(descCache, r.passes, "pass")
	counter(descCache, r.failures, "error")
	c := s.cache()
	gauge(descCacheObjects, float64(c.objects))
	gauge(descCacheBytes, float64(c.bytes))
	gauge(descCacheCapacity, float64(c.capacity))
	counter(descCacheEvictions, c.evictions)
	for _, o := range s.origins() {
		counter(descOriginReqs, o.requests, o.name)
		for k, n := range o.errors {
			counter(descOriginErrors, n, o.name, errKind(k).String())
		}
		gauge(descOriginUp, boolGauge(o.up), o.name)
		gauge(descOriginCurrent, boolGauge(o.current), o.name)
	}
	for reason, n := range s.denials() {
		counter(descDenials, n, reason)
	}
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
