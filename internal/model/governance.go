package model

import "time"

// GovernanceSettings are a tenant's adjustments of the governance checks.
// Zero values mean "the built-in default", so a tenant that never
// configured anything gets the defaults and a default changed in a later
// release reaches it.
type GovernanceSettings struct {
	TenantID string `json:"tenant"`
	// LintLevels overrides the level of lint rules by id: error, warn,
	// info, or off (disabled).
	LintLevels map[string]string `json:"lint_levels"`
	// VersionBudget is the maximum number of active (published and
	// deprecated) versions per API; 0: the default (2).
	VersionBudget int `json:"version_budget"`
	// APIBudgets overrides VersionBudget for single APIs, by API name.
	APIBudgets map[string]int `json:"api_budgets"`
	// RetireWindow: a version called within it is not retired without
	// force; 0: the default (30 days).
	RetireWindow time.Duration `json:"retire_window"`
	UpdatedBy    string        `json:"updated_by,omitempty"`
	UpdatedAt    time.Time     `json:"updated_at"`
}

// VersionUsage is the traffic of one consumer (and, for devices, one model
// and firmware) on one version, as persisted: what usage-aware retirement
// and the inventory read.
type VersionUsage struct {
	TenantID  string    `json:"tenant"`
	VersionID string    `json:"version_id"`
	Consumer  string    `json:"consumer"`
	Model     string    `json:"model,omitempty"`
	Firmware  string    `json:"firmware,omitempty"`
	Count     int64     `json:"count"`
	LastSeen  time.Time `json:"last_seen"`
}
