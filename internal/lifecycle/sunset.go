package lifecycle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/fleetgate/fleetgate/internal/audit"
	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/store"
	"github.com/fleetgate/fleetgate/internal/usage"
)

// SweeperActor is the audit actor of automatic retirements.
const SweeperActor = "system/sunset-sweeper"

// maxSweep bounds the versions one Run handles; the rest waits for the
// next run.
const maxSweep = 1000

// SunsetAlert is a deprecated version past its sunset that was not retired
// because the retire rule refuses it: it is still called.
type SunsetAlert struct {
	Tenant  string           `json:"tenant"`
	API     string           `json:"api"`
	Version string           `json:"version"`
	Sunset  time.Time        `json:"sunset"`
	Callers []usage.UseEntry `json:"callers"`
}

// SweepReport is what one Run did.
type SweepReport struct {
	Retired []string      // "tenant/api/version"
	Alerts  []SunsetAlert // versions past sunset still called
}

// SunsetSweeper retires deprecated versions at their sunset when the
// retire rule allows it, and raises alerts for those it may not retire.
type SunsetSweeper struct {
	Store   store.Store
	Machine *Machine // the machine with the governance checks
	Log     *slog.Logger
	// OnAlerts receives the complete set of current alerts after every
	// Run (it replaces the previous set): the app exports it as a gauge.
	OnAlerts func([]SunsetAlert)
	// OnRetired is called with the number of versions retired by a Run.
	OnRetired func(int)
	// Interval between runs of Loop (default 1h).
	Interval time.Duration
}

// Run sweeps once, as of now. Each retirement is its own transaction,
// audited as SweeperActor with the transition, so one refused or failed
// version never holds back the others. The version is re-read inside the
// transaction: two nodes sweeping at once retire it once.
func (s *SunsetSweeper) Run(ctx context.Context, now time.Time) (SweepReport, error) {
	var rep SweepReport
	var due []model.Version
	err := s.Store.View(ctx, func(tx store.Tx) error {
		vs, err := tx.ListVersionsByState("", model.StateDeprecated)
		for _, v := range vs {
			if v.Sunset != nil && !v.Sunset.After(now) && len(due) < maxSweep {
				due = append(due, v)
			}
		}
		return err
	})
	if err != nil {
		return rep, err
	}
	var errs []error
	for _, d := range due {
		retired, alert, err := s.sweep(ctx, &d, now)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s/%s/%s: %w", d.TenantID, d.APIName, d.Label, err))
		case retired:
			rep.Retired = append(rep.Retired, d.TenantID+"/"+d.APIName+"/"+d.Label)
		case alert != nil:
			rep.Alerts = append(rep.Alerts, *alert)
		}
	}
	if s.OnRetired != nil {
		s.OnRetired(len(rep.Retired))
	}
	if s.OnAlerts != nil {
		s.OnAlerts(rep.Alerts)
	}
	if s.Log != nil {
		for _, r := range rep.Retired {
			s.Log.Info("version retired at its sunset", "version", r)
		}
		for _, a := range rep.Alerts {
			s.Log.Warn("version past its sunset is still called", "tenant", a.Tenant, "api", a.API, "version", a.Version, "callers", len(a.Callers))
		}
	}
	return rep, errors.Join(errs...)
}

func (s *SunsetSweeper) sweep(ctx context.Context, d *model.Version, now time.Time) (retired bool, alert *SunsetAlert, err error) {
	err = s.Store.Update(ctx, func(tx store.Tx) error {
		v, err := tx.GetVersion(d.TenantID, d.APIID, d.Label)
		if err != nil {
			return err
		}
		if v.State != model.StateDeprecated || v.Sunset == nil || v.Sunset.After(now) {
			return nil // changed since the list was read
		}
		before := audit.Digest(v)
		actor := &model.Operator{ID: "sunset-sweeper", TenantID: v.TenantID, Name: "sunset-sweeper", Roles: []model.Role{model.RoleAdmin}, System: true}
		reason := "sunset " + v.Sunset.UTC().Format(time.RFC3339) + " passed"
		t, err := s.Machine.Transition(tx, &Request{Version: v, To: model.StateRetired, Actor: actor, ActorName: SweeperActor, Reason: reason, Now: now},
			uuid.Must(uuid.NewV7()).String())
		var chk *CheckError
		if errors.As(err, &chk) && chk.Check == "retire-in-use" {
			callers, _ := chk.Data.([]usage.UseEntry)
			alert = &SunsetAlert{Tenant: v.TenantID, API: v.APIName, Version: v.Label, Sunset: *v.Sunset, Callers: callers}
			return nil // nothing written: the transaction has no change
		}
		if err != nil {
			return err
		}
		retired = true
		return tx.AppendAudit(&model.AuditRecord{TenantID: v.TenantID, Actor: SweeperActor, Action: "version.transition", ObjectType: "version",
			ObjectID: v.APIName + "/" + v.Label, BeforeDigest: before, AfterDigest: audit.Digest(v), RequestID: t.ID,
			Detail: mustJSON(map[string]any{"from": model.StateDeprecated, "to": model.StateRetired, "reason": reason, "automatic": true})})
	})
	if err != nil {
		return false, nil, err
	}
	return retired, alert, nil
}

// Loop runs the sweeper at once and then every Interval until ctx ends.
// Errors are logged; the next run tries again.
func (s *SunsetSweeper) Loop(ctx context.Context) {
	every := s.Interval
	if every <= 0 {
		every = time.Hour
	}
	run := func() {
		if _, err := s.Run(ctx, audit.Now()); err != nil && s.Log != nil && ctx.Err() == nil {
			s.Log.Error("sunset sweep failed", "err", err)
		}
	}
	run() // a node that was down at a sunset catches up at once
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			run()
		}
	}
}

// mustJSON encodes an audit detail (maps of strings and states: it cannot
// fail).
func mustJSON(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}
