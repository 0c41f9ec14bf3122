package telemetry

import "github.com/prometheus/client_golang/prometheus"

// Governance exports what the sunset sweeper finds, for alerting.
type Governance struct {
	pastSunset *prometheus.GaugeVec
	retired    prometheus.Counter
}

// PastSunset names a deprecated version past its sunset that is still
// called, and by how many distinct callers.
type PastSunset struct {
	Tenant, API, Version string
	Callers              int
}

// NewGovernance registers the governance metrics on m.
func (m *Metrics) NewGovernance() *Governance {
	g := &Governance{
		pastSunset: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "fleetgate_versions_past_sunset",
			Help: "Deprecated versions past their sunset that cannot be retired automatically because they are still called; the value is the number of distinct callers within the retire window.",
		}, []string{"tenant", "api", "version"}),
		retired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fleetgate_sunset_retirements_total", Help: "Versions retired automatically at their sunset.",
		}),
	}
	m.reg.MustRegister(g.pastSunset, g.retired)
	return g
}

// SetPastSunset replaces the exported set: a version retired or no longer
// called since the last sweep disappears from the gauge.
func (g *Governance) SetPastSunset(ps []PastSunset) {
	g.pastSunset.Reset()
	for _, p := range ps {
		g.pastSunset.WithLabelValues(p.Tenant, p.API, p.Version).Set(float64(p.Callers))
	}
}

// Retired counts automatic retirements.
func (g *Governance) Retired(n int) { g.retired.Add(float64(n)) }
