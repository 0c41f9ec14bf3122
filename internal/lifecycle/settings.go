package lifecycle

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/spec/lint"
	"github.com/fleetgate/fleetgate/internal/store"
)

// Built-in defaults, used where a tenant's settings leave a value zero.
const (
	DefaultBudget       = 2
	DefaultRetireWindow = 30 * 24 * time.Hour
)

// Bounds of the settings an operator may choose.
const (
	MaxBudget          = 100
	MaxAPIBudgets      = 1000
	MinRetireWindow    = time.Hour
	MaxRetireWindow    = 3650 * 24 * time.Hour
	maxSettingsEntries = 100
)

// Settings are the effective governance settings of one tenant: its stored
// choices with the defaults filled in.
type Settings struct {
	LintLevels   map[string]lint.Level
	Budget       int
	APIBudgets   map[string]int
	RetireWindow time.Duration
}

// BudgetFor is the version budget of the API named api.
func (s Settings) BudgetFor(api string) int {
	if b, ok := s.APIBudgets[api]; ok && b > 0 {
		return b
	}
	return s.Budget
}

// LintConfig is the lint configuration of a version under these settings:
// the tenant's rule levels and the version's own waivers.
func (s Settings) LintConfig(p *model.Policy) lint.Config {
	c := LintConfig(p)
	c.Levels = s.LintLevels
	return c
}

// Settings reads the tenant's settings inside tx, so that a check sees the
// settings of the same snapshot as the objects it judges. A tenant that
// never saved settings gets the defaults (g's, else the built-in ones).
func (g Governance) Settings(tx store.Tx, tenant string) (Settings, error) {
	s := Settings{Budget: g.Budget, RetireWindow: g.RetireWindow}
	if s.Budget <= 0 {
		s.Budget = DefaultBudget
	}
	if s.RetireWindow <= 0 {
		s.RetireWindow = DefaultRetireWindow
	}
	stored, err := tx.GetGovernanceSettings(tenant)
	if errors.Is(err, store.ErrNotFound) {
		return s, nil
	}
	if err != nil {
		return s, err
	}
	if stored.VersionBudget > 0 {
		s.Budget = stored.VersionBudget
	}
	if stored.RetireWindow > 0 {
		s.RetireWindow = stored.RetireWindow
	}
	s.APIBudgets = stored.APIBudgets
	if len(stored.LintLevels) > 0 {
		s.LintLevels = make(map[string]lint.Level, len(stored.LintLevels))
		for id, lvl := range stored.LintLevels {
			s.LintLevels[id] = lint.Level(lvl)
		}
	}
	return s, nil
}

// SettingError locates one problem in submitted settings.
type SettingError struct {
	Pointer string // JSON pointer, e.g. "/lint_levels/no-such-rule"
	Detail  string
}

// ValidateSettings reports every problem of s at once. apiExists says
// whether the tenant has an API of that name: a budget for a misspelt API
// would silently never apply.
func ValidateSettings(s *model.GovernanceSettings, apiExists func(name string) (bool, error)) ([]SettingError, error) {
	var errs []SettingError
	add := func(ptr, format string, args ...any) {
		errs = append(errs, SettingError{Pointer: ptr, Detail: fmt.Sprintf(format, args...)})
	}
	known := map[string]bool{}
	var names []string
	for _, r := range lint.Rules() {
		known[r.ID] = true
		names = append(names, r.ID)
	}
	if len(s.LintLevels) > maxSettingsEntries {
		add("/lint_levels", "at most %d rules", maxSettingsEntries)
	}
	for _, id := range slices.Sorted(maps.Keys(s.LintLevels)) {
		ptr := "/lint_levels/" + pointerToken(id)
		lvl := lint.Level(s.LintLevels[id])
		switch {
		case !known[id]:
			add(ptr, "unknown lint rule %q; known rules: %s", clipName(id), strings.Join(names, ", "))
		case lint.Config{Levels: map[string]lint.Level{id: lvl}}.Validate() != nil:
			if id == "waiver-needs-reason" {
				add(ptr, "rule %s cannot be overridden: a waiver without a reason must never waive", id)
			} else {
				add(ptr, "level must be error, warn, info or off, not %q", clipName(string(lvl)))
			}
		}
	}
	if s.VersionBudget < 0 || s.VersionBudget > MaxBudget {
		add("/version_budget", "must be from 1 to %d (0 or absent: the default, %d)", MaxBudget, DefaultBudget)
	}
	if len(s.APIBudgets) > MaxAPIBudgets {
		add("/api_budgets", "at most %d APIs", MaxAPIBudgets)
	} else {
		for _, api := range slices.Sorted(maps.Keys(s.APIBudgets)) {
			ptr := "/api_budgets/" + pointerToken(api)
			if b := s.APIBudgets[api]; b < 1 || b > MaxBudget {
				add(ptr, "must be from 1 to %d", MaxBudget)
				continue
			}
			ok, err := apiExists(api)
			if err != nil {
				return nil, err
			}
			if !ok {
				add(ptr, "no API named %q in this tenant", clipName(api))
			}
		}
	}
	if w := s.RetireWindow; w != 0 && (w < MinRetireWindow || w > MaxRetireWindow) {
		add("/retire_window", "must be from 1h to 3650d (0 or absent: the default, 30d)")
	}
	return errs, nil
}

func pointerToken(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(clipName(s), "~", "~0"), "/", "~1")
}

// clipName bounds a user-supplied name echoed in an error.
func clipName(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// FormatWindow renders a window in whole days when it is one ("30d"), as
// operators write it.
func FormatWindow(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}

// ParseWindow reads "30d", "36h" or "90m"; "" and "0" are 0 (the default).
func ParseWindow(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "0" {
		return 0, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		var n int64
		if _, err := fmt.Sscanf(days, "%d", &n); err != nil || fmt.Sprint(n) != days || n < 0 || n > 100000 {
			return 0, fmt.Errorf("%q: want a whole number of days such as 30d", clipName(s))
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q: want a duration such as 30d or 36h", clipName(s))
	}
	return d, nil
}
