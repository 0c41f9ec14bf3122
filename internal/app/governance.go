package app

import (
	"github.com/fleetgate/fleetgate/internal/lifecycle"
	"github.com/fleetgate/fleetgate/internal/telemetry"
)

// newSweeper builds the sunset sweeper: its alerts become the
// fleetgate_versions_past_sunset gauge, and a retirement rebuilds the
// snapshot so the data plane answers 410 for the retired version.
func newSweeper(a *App, m *lifecycle.Machine) *lifecycle.SunsetSweeper {
	g := a.metrics.NewGovernance()
	return &lifecycle.SunsetSweeper{Store: a.store, Machine: m, Log: a.log, Interval: a.cfg.SunsetSweepInterval,
		OnAlerts: func(as []lifecycle.SunsetAlert) {
			ps := make([]telemetry.PastSunset, len(as))
			for i, al := range as {
				ps[i] = telemetry.PastSunset{Tenant: al.Tenant, API: al.API, Version: al.Version, Callers: len(al.Callers)}
			}
			g.SetPastSunset(ps)
		},
		OnRetired: func(n int) {
			g.Retired(n)
			if n > 0 {
				a.builder.Notify()
			}
		},
	}
}

// startGovernance runs the usage flusher and the sunset sweeper until
// Shutdown cancels the background context.
func (a *App) startGovernance() {
	a.govLoop.Add(2)
	go func() {
		defer a.govLoop.Done()
		a.flusher.Loop(a.bgCtx, a.cfg.UsageFlushInterval, func(err error) { a.log.Error("usage flush failed", "err", err) })
	}()
	go func() {
		defer a.govLoop.Done()
		a.sweeper.Loop(a.bgCtx)
	}()
}

// SunsetSweeper exposes the sweeper so tests (and embedders) can run it at
// a chosen time.
func (a *App) SunsetSweeper() *lifecycle.SunsetSweeper { return a.sweeper }

// FlushUsage writes pending usage to the store now.
func (a *App) FlushUsage() error {
	_, err := a.flusher.Flush(a.bgCtx)
	return err
}
