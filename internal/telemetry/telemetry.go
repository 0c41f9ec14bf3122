// Package telemetry builds the process's logger and Prometheus metrics. The
// registry is owned by the Metrics value, never global, so tests and
// several servers in one process do not collide.
package telemetry

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// NewLogger returns a slog logger writing text or JSON to w. Secrets are
// kept out of logs by construction: nothing logs request bodies or
// Authorization headers.
func NewLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log format %q: want text or json", format)
}

// Metrics holds the process's collectors.
type Metrics struct {
	reg          *prometheus.Registry
	adminReqs    *prometheus.CounterVec
	adminLatency *prometheus.HistogramVec
}

// NewMetrics registers Go runtime, process and Fleetgate collectors on a
// fresh registry.
func NewMetrics() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.adminReqs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fleetgate_admin_requests_total", Help: "Admin API requests by route and status.",
	}, []string{"method", "route", "status"})
	m.adminLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "fleetgate_admin_request_seconds", Help: "Admin API latency by route.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 4, 8),
	}, []string{"route"})
	m.reg.MustRegister(m.adminReqs, m.adminLatency)
	return m
}

// Registry exposes the registry so other packages can add their collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// AdminRequest records one admin request. route is the matched pattern
// (bounded cardinality), never the raw path.
func (m *Metrics) AdminRequest(method, route string, status int, d time.Duration) {
	if route == "" {
		route = "unmatched"
	}
	m.adminReqs.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
	m.adminLatency.WithLabelValues(route).Observe(d.Seconds())
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}
