package sqlstore

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/store"
)

// ---- governance settings

func (t *tx) GetGovernanceSettings(tenant string) (*model.GovernanceSettings, error) {
	var v model.GovernanceSettings
	var levels, budgets string
	var window, at int64
	err := t.queryRow(`SELECT tenant_id, lint_levels, version_budget, api_budgets, retire_window, updated_by, updated_at
		FROM governance_settings WHERE tenant_id = ?`, tenant).Scan(&v.TenantID, &levels, &v.VersionBudget, &budgets, &window, &v.UpdatedBy, &at)
	if err != nil {
		return nil, t.s.wrap(err)
	}
	if err := json.Unmarshal([]byte(levels), &v.LintLevels); err != nil {
		return nil, fmt.Errorf("governance settings %s: lint_levels: %w", tenant, err)
	}
	if err := json.Unmarshal([]byte(budgets), &v.APIBudgets); err != nil {
		return nil, fmt.Errorf("governance settings %s: api_budgets: %w", tenant, err)
	}
	v.RetireWindow, v.UpdatedAt = time.Duration(window)*time.Microsecond, fromUS(at)
	return &v, nil
}

// PutGovernanceSettings upserts with ON CONFLICT, which SQLite (3.24+) and
// PostgreSQL spell the same way.
func (t *tx) PutGovernanceSettings(v *model.GovernanceSettings) error {
	levels := v.LintLevels
	if levels == nil {
		levels = map[string]string{}
	}
	budgets := v.APIBudgets
	if budgets == nil {
		budgets = map[string]int{}
	}
	_, err := t.exec(`INSERT INTO governance_settings (tenant_id, lint_levels, version_budget, api_budgets, retire_window, updated_by, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (tenant_id) DO UPDATE SET lint_levels = excluded.lint_levels, version_budget = excluded.version_budget,
			api_budgets = excluded.api_budgets, retire_window = excluded.retire_window, updated_by = excluded.updated_by, updated_at = excluded.updated_at`,
		v.TenantID, jsonText(levels), v.VersionBudget, jsonText(budgets), v.RetireWindow.Microseconds(), v.UpdatedBy, us(v.UpdatedAt))
	return err
}

// ---- version usage

// usageChunk rows per INSERT: 7 parameters each stays far below SQLite's
// and PostgreSQL's parameter limits.
const usageChunk = 200

type usageKey struct{ tenant, version, consumer, model, firmware string }

func (t *tx) AddVersionUsage(rows []model.VersionUsage) error {
	// PostgreSQL refuses an INSERT ... ON CONFLICT that touches one row
	// twice, so duplicates are merged here.
	merged := make([]model.VersionUsage, 0, len(rows))
	at := map[usageKey]int{}
	for _, r := range rows {
		if r.Count <= 0 {
			continue
		}
		k := usageKey{r.TenantID, r.VersionID, r.Consumer, r.Model, r.Firmware}
		if i, ok := at[k]; ok {
			merged[i].Count += r.Count
			if r.LastSeen.After(merged[i].LastSeen) {
				merged[i].LastSeen = r.LastSeen
			}
			continue
		}
		at[k] = len(merged)
		merged = append(merged, r)
	}
	for len(merged) > 0 {
		n := min(len(merged), usageChunk)
		chunk := merged[:n]
		merged = merged[n:]
		var b strings.Builder
		b.WriteString(`INSERT INTO version_usage (tenant_id, version_id, consumer, model, firmware, calls, last_seen) VALUES `)
		args := make([]any, 0, 7*len(chunk))
		for i, r := range chunk {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("(?, ?, ?, ?, ?, ?, ?)")
			args = append(args, r.TenantID, r.VersionID, r.Consumer, r.Model, r.Firmware, r.Count, us(r.LastSeen))
		}
		b.WriteString(` ON CONFLICT (tenant_id, version_id, consumer, model, firmware) DO UPDATE SET
			calls = version_usage.calls + excluded.calls,
			last_seen = CASE WHEN excluded.last_seen > version_usage.last_seen THEN excluded.last_seen ELSE version_usage.last_seen END`)
		if _, err := t.exec(b.String(), args...); err != nil {
			return err
		}
	}
	return nil
}

func (t *tx) ListVersionUsage(tenant string, f store.UsageFilter) ([]model.VersionUsage, error) {
	lim := f.Limit
	switch {
	case lim == 0:
		lim = 1000
	case lim < 0:
		lim = 1 << 30
	}
	var since int64
	if !f.Since.IsZero() {
		since = us(f.Since)
	}
	rows, err := t.query(`SELECT tenant_id, version_id, consumer, model, firmware, calls, last_seen FROM version_usage
		WHERE tenant_id = ? AND (? = '' OR version_id = ?) AND last_seen >= ?
		ORDER BY calls DESC, version_id, consumer, model, firmware LIMIT ?`, tenant, f.VersionID, f.VersionID, since, lim)
	return collect(t, rows, err, func(r scanner) (*model.VersionUsage, error) {
		var v model.VersionUsage
		var seen int64
		if err := r.Scan(&v.TenantID, &v.VersionID, &v.Consumer, &v.Model, &v.Firmware, &v.Count, &seen); err != nil {
			return nil, err
		}
		v.LastSeen = fromUS(seen)
		return &v, nil
	})
}
