package telemetry

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DataPlane holds the data plane's collectors. Labels come from compiled
// routes (bounded by what is published), never from raw paths or callers.
type DataPlane struct {
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	denials   *prometheus.CounterVec
	upstream  *prometheus.CounterVec
	snapshots prometheus.Gauge
}

// NewDataPlane registers the data-plane collectors on m's registry.
func (m *Metrics) NewDataPlane() *DataPlane {
	d := &DataPlane{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fleetgate_requests_total", Help: "Data-plane requests by protocol, API version, operation and status.",
		}, []string{"protocol", "api", "version", "operation", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "fleetgate_request_seconds", Help: "Data-plane request latency (including the upstream) by API version.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 3, 10),
		}, []string{"protocol", "api", "version"}),
		denials: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fleetgate_denials_total", Help: "Requests denied by the policy engine, by protocol and reason.",
		}, []string{"protocol", "reason"}),
		upstream: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fleetgate_upstream_errors_total", Help: "Upstream failures by API version and kind (connect, timeout, unavailable).",
		}, []string{"api", "version", "kind"}),
		snapshots: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "fleetgate_snapshot_serial", Help: "Serial number of the configuration snapshot being served.",
		}),
	}
	m.reg.MustRegister(d.requests, d.latency, d.denials, d.upstream, d.snapshots)
	return d
}

// Request records one data-plane request.
func (d *DataPlane) Request(proto, api, version, op string, status int, dur time.Duration) {
	d.requests.WithLabelValues(proto, api, version, op, strconv.Itoa(status)).Inc()
	d.latency.WithLabelValues(proto, api, version).Observe(dur.Seconds())
}

// Denial records a policy denial.
func (d *DataPlane) Denial(proto, reason string) { d.denials.WithLabelValues(proto, reason).Inc() }

// UpstreamError records an upstream failure.
func (d *DataPlane) UpstreamError(api, version, kind string) {
	d.upstream.WithLabelValues(api, version, kind).Inc()
}

// Snapshot records the serial of the installed snapshot.
func (d *DataPlane) Snapshot(serial uint64) { d.snapshots.Set(float64(serial)) }

// RouteMetrics caches the labelled children of one route, so the hot path
// skips hashing five label values per request.
type RouteMetrics struct {
	d        *DataPlane
	labels   [4]string
	latency  prometheus.Observer
	mu       sync.RWMutex
	byStatus map[int]prometheus.Counter
}

// Route returns the metrics handle of one route.
func (d *DataPlane) Route(proto, api, version, op string) *RouteMetrics {
	return &RouteMetrics{d: d, labels: [4]string{proto, api, version, op},
		latency: d.latency.WithLabelValues(proto, api, version), byStatus: map[int]prometheus.Counter{}}
}

// Observe records one request of the route.
func (m *RouteMetrics) Observe(status int, dur time.Duration) {
	m.mu.RLock()
	c := m.byStatus[status]
	m.mu.RUnlock()
	if c == nil {
		c = m.d.requests.WithLabelValues(m.labels[0], m.labels[1], m.labels[2], m.labels[3], strconv.Itoa(status))
		m.mu.Lock()
		m.byStatus[status] = c
		m.mu.Unlock()
	}
	c.Inc()
	m.latency.Observe(dur.Seconds())
}
