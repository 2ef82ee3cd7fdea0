package coordinator

import (
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/livegrid/livegrid/coordinator/packager"
	"github.com/livegrid/livegrid/coordinator/scheduler"
	"github.com/livegrid/livegrid/internal/queue"
)

// metrics is a node's Prometheus registry. Results are counted as the
// scheduler reports them (observe); everything else is read from the
// components' own counters at scrape time (watch).
type metrics struct {
	reg        *prometheus.Registry
	transcoded *prometheus.CounterVec
	transcode  prometheus.Histogram
	fallbacks  prometheus.Counter
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		transcoded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "livegrid_segments_transcoded_total",
			Help: "Source segments transcoded, per rendition.",
		}, []string{"rendition"}),
		transcode: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "livegrid_segment_transcode_seconds",
			Help:    "Time a worker took to transcode one source segment into every rendition.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32},
		}),
		fallbacks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "livegrid_encoder_fallbacks_total",
			Help: "Times a worker fell back from the chosen encoder to another.",
		}),
	}
	m.reg.MustRegister(m.transcoded, m.transcode, m.fallbacks,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// observe counts one segment's result; it must not block (the scheduler's
// OnResult calls it).
func (m *metrics) observe(r queue.Result) {
	m.fallbacks.Add(float64(r.Fallbacks))
	if r.Status != queue.StatusDone {
		return // a gap: its time says nothing about transcoding
	}
	m.transcode.Observe(r.TranscodeTime.Seconds())
	for _, rr := range r.Renditions {
		m.transcoded.WithLabelValues(rr.Name).Inc()
	}
}

// watch registers the scrape-time readers of the packager's and the
// scheduler's counters.
func (m *metrics) watch(src componentStats) {
	m.reg.MustRegister(src)
}

// handler serves the registry in the Prometheus exposition formats.
func (m *metrics) handler(log *slog.Logger) http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		Registry: m.reg,
	})
}

// componentStats is a prometheus.Collector that reads the components'
// snapshots when scraped, so no component pushes into Prometheus.
type componentStats struct {
	packager  func() packager.Metrics
	scheduler func() scheduler.Stats
}

var (
	liveStreamsDesc = prometheus.NewDesc("livegrid_live_streams",
		"Presentations not yet ended: live, in their grace period, or waiting for their last segments.", nil, nil)
	publishedDesc = prometheus.NewDesc("livegrid_segments_published_total",
		"Output segments the packager published (each in every rendition).", nil, nil)
	gapsDesc = prometheus.NewDesc("livegrid_segment_gaps_total",
		"Source segments skipped by the packager: lost, quarantined, forced by max_hold or unpublishable.", nil, nil)
	storeErrorsDesc = prometheus.NewDesc("livegrid_store_errors_total",
		"Failed object store calls by the packager.", nil, nil)
	queueDepthDesc = prometheus.NewDesc("livegrid_queue_depth",
		"Tasks pending in a queue at the scheduler's last poll.", []string{"queue"}, nil)
	outstandingDesc = prometheus.NewDesc("livegrid_segments_outstanding",
		"Segments submitted that have not ended yet.", nil, nil)
)

// Describe implements prometheus.Collector.
func (c componentStats) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{liveStreamsDesc, publishedDesc, gapsDesc, storeErrorsDesc, queueDepthDesc, outstandingDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c componentStats) Collect(ch chan<- prometheus.Metric) {
	pm := c.packager()
	ch <- prometheus.MustNewConstMetric(liveStreamsDesc, prometheus.GaugeValue, float64(pm.LiveStreams))
	ch <- prometheus.MustNewConstMetric(publishedDesc, prometheus.CounterValue, float64(pm.SegmentsPublished))
	ch <- prometheus.MustNewConstMetric(gapsDesc, prometheus.CounterValue, float64(pm.Gaps))
	ch <- prometheus.MustNewConstMetric(storeErrorsDesc, prometheus.CounterValue, float64(pm.StoreErrors))
	ss := c.scheduler()
	ch <- prometheus.MustNewConstMetric(outstandingDesc, prometheus.GaugeValue, float64(ss.Outstanding))
	for _, q := range ss.Queues {
		ch <- prometheus.MustNewConstMetric(queueDepthDesc, prometheus.GaugeValue, float64(q.Pending), q.Queue)
	}
}
