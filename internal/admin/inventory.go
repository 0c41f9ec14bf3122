package admin

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/fleetgate/fleetgate/internal/lifecycle"
	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/policy"
	"github.com/fleetgate/fleetgate/internal/spec"
	"github.com/fleetgate/fleetgate/internal/spec/lint"
	"github.com/fleetgate/fleetgate/internal/store"
	"github.com/fleetgate/fleetgate/internal/usage"
	"github.com/fleetgate/fleetgate/internal/usage/usagestore"
)

// InventoryOperation is one exposed operation.
type InventoryOperation struct {
	API         string     `json:"api"`
	Version     string     `json:"version"`
	State       string     `json:"state"`
	Protocol    string     `json:"protocol"`
	Action      string     `json:"action"`
	Path        string     `json:"path"`
	OperationID string     `json:"operation_id"`
	Auth        []string   `json:"auth"`
	Anonymous   bool       `json:"anonymous"`
	Bindings    int        `json:"bindings"`
	Rules       int        `json:"rules"`
	RateLimited bool       `json:"rate_limited"`
	Calls       int64      `json:"calls"`
	LastCall    *time.Time `json:"last_call,omitempty"`
}

// InventoryFinding is a lint finding of a live version.
type InventoryFinding struct {
	API     string `json:"api"`
	Version string `json:"version"`
	lint.Finding
}

// ScorePart explains one deduction from the score.
type ScorePart struct {
	Name    string `json:"name"`
	Penalty int    `json:"penalty"`
	Why     string `json:"why"`
}

// Inventory is the attack surface of a tenant.
type Inventory struct {
	Tenant     string               `json:"tenant"`
	Operations []InventoryOperation `json:"operations"`
	PastSunset []InventoryOperation `json:"past_sunset_still_called"`
	Findings   []InventoryFinding   `json:"findings"`
	Shadow     []usage.ShadowEntry  `json:"shadow_traffic"`
	Score      int                  `json:"score"`
	Parts      []ScorePart          `json:"score_parts"`
}

// inventoryJWT stands in for JWT verifiers: the inventory compiles routes
// to describe them, never to verify tokens.
type inventoryJWT struct{}

func (inventoryJWT) Verify(string, time.Time) (map[string]any, error) {
	return nil, fmt.Errorf("inventory only")
}

func (s *Server) inventory(w http.ResponseWriter, r *http.Request, p *principal) error {
	var live []model.Version
	var used []usage.UseEntry
	var set lifecycle.Settings
	if err := s.st.View(r.Context(), func(tx store.Tx) (err error) {
		live, err = tx.ListVersionsByState(p.tenant, model.StatePublished, model.StateDeprecated, model.StateBlocked)
		if err != nil {
			return err
		}
		if set, err = s.gov.Settings(tx, p.tenant); err != nil {
			return err
		}
		// Persisted usage plus what is not flushed yet: it survives restarts.
		used, err = usagestore.Read(tx, s.usage, p.tenant, "", time.Time{})
		return err
	}); err != nil {
		return err
	}
	inv := Inventory{Tenant: p.tenant, Operations: []InventoryOperation{}, PastSunset: []InventoryOperation{}, Findings: []InventoryFinding{}, Shadow: []usage.ShadowEntry{}}
	snap := policy.Compile(&policy.Input{Versions: live}, func(*model.JWTPolicy) (policy.JWTVerifier, error) { return inventoryJWT{}, nil })
	uses := map[string]usage.UseEntry{}
	for _, u := range used {
		agg := uses[u.VersionID]
		agg.Count += u.Count
		if u.LastSeen.After(agg.LastSeen) {
			agg.LastSeen = u.LastSeen
		}
		uses[u.VersionID] = agg
	}
	// Shadow traffic is not attributable to a tenant before routing, so
	// only system operators see it.
	if p.op.System && s.usage != nil {
		inv.Shadow = s.usage.ShadowEntries()
	}
	now := time.Now()
	for _, rt := range snap.Routes() {
		b, rules, limited := rt.Guards()
		auth := rt.AuthMethods()
		op := InventoryOperation{API: rt.API, Version: rt.Version, State: string(rt.State), Protocol: rt.Protocol.String(),
			Action: rt.Action, Path: rt.Template, OperationID: rt.OperationID, Auth: auth, Bindings: b, Rules: rules, RateLimited: limited}
		for _, a := range auth {
			op.Anonymous = op.Anonymous || a == "anonymous"
		}
		if u, ok := uses[rt.VersionID]; ok {
			op.Calls = u.Count
			t := u.LastSeen
			op.LastCall = &t
			if rt.Sunset != nil && now.After(*rt.Sunset) {
				inv.PastSunset = append(inv.PastSunset, op)
			}
		}
		inv.Operations = append(inv.Operations, op)
	}
	sort.Slice(inv.Operations, func(i, j int) bool {
		a, b := inv.Operations[i], inv.Operations[j]
		return a.API+a.Version+a.Path+a.Action < b.API+b.Version+b.Path+b.Action
	})
	for i := range live {
		v := &live[i]
		if v.Spec == nil {
			continue
		}
		doc, err := spec.Parse([]byte(v.Spec.Content))
		if err != nil {
			continue
		}
		for _, f := range lint.Lint(doc, &v.Policy, set.LintConfig(&v.Policy)) {
			inv.Findings = append(inv.Findings, InventoryFinding{API: v.APIName, Version: v.Label, Finding: f})
		}
	}
	inv.Score, inv.Parts = score(&inv, len(snap.Warnings))
	if r.URL.Query().Get("format") == "markdown" {
		w.Header().Set("Content-Type", "text/markdown; charset=utf-8")
		_, err := w.Write([]byte(inv.Markdown()))
		return err
	}
	return writeJSON(w, http.StatusOK, inv)
}

// score starts from 100 and deducts, capped per part, so that what to fix
// first is the largest part.
func score(inv *Inventory, broken int) (int, []ScorePart) {
	var parts []ScorePart
	add := func(name string, n, each, max int, why string) {
		if n == 0 {
			return
		}
		p := n * each
		if p > max {
			p = max
		}
		parts = append(parts, ScorePart{Name: name, Penalty: p, Why: fmt.Sprintf("%d %s", n, why)})
	}
	anon, unlimited, unbound := 0, 0, 0
	for _, op := range inv.Operations {
		if op.Anonymous {
			anon++
		}
		if !op.RateLimited {
			unlimited++
		}
		if strings.Contains(op.Path, "{") && op.Bindings == 0 && op.Rules == 0 {
			unbound++
		}
	}
	errs, warns := 0, 0
	for _, f := range inv.Findings {
		switch f.Level {
		case lint.LevelError:
			errs++
		case lint.LevelWarn:
			warns++
		}
	}
	add("unbound-identifiers", unbound, 15, 45, "operation(s) take an object identifier with no identity binding or rule")
	add("anonymous", anon, 5, 20, "operation(s) accept anonymous callers")
	add("past-sunset", len(inv.PastSunset), 10, 20, "operation(s) past their sunset are still called")
	add("lint-errors", errs, 5, 25, "lint error(s) in live versions")
	add("unlimited", unlimited, 2, 10, "operation(s) without a rate limit")
	add("shadow", len(inv.Shadow), 1, 10, "undeclared route(s) or topic(s) called (shadow traffic)")
	add("lint-warnings", warns, 1, 10, "lint warning(s)")
	add("broken-versions", broken, 10, 20, "live version(s) the data plane cannot compile")
	sort.SliceStable(parts, func(i, j int) bool { return parts[i].Penalty > parts[j].Penalty })
	total := 100
	for _, p := range parts {
		total -= p.Penalty
	}
	if total < 0 {
		total = 0
	}
	if parts == nil {
		parts = []ScorePart{}
	}
	return total, parts
}

// Markdown renders the inventory for people (reviews, tickets).
func (inv *Inventory) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# API inventory of tenant %s\n\nScore: **%d/100**\n\n", inv.Tenant, inv.Score)
	if len(inv.Parts) > 0 {
		b.WriteString("| fix first | penalty | why |\n|---|---:|---|\n")
		for _, p := range inv.Parts {
			fmt.Fprintf(&b, "| %s | %d | %s |\n", p.Name, p.Penalty, p.Why)
		}
		b.WriteString("\n")
	}
	b.WriteString("## Operations\n\n| API | version | state | protocol | operation | auth | bindings | rules | limited | calls |\n|---|---|---|---|---|---|---:|---:|---|---:|\n")
	for _, op := range inv.Operations {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | `%s %s` | %s | %d | %d | %v | %d |\n", op.API, op.Version, op.State, op.Protocol,
			op.Action, op.Path, strings.Join(op.Auth, ", "), op.Bindings, op.Rules, op.RateLimited, op.Calls)
	}
	if len(inv.Findings) > 0 {
		b.WriteString("\n## Lint findings\n\n| API | version | level | rule | where | message |\n|---|---|---|---|---|---|\n")
		for _, f := range inv.Findings {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | line %d `%s` | %s |\n", f.API, f.Version, f.Level, f.Rule, f.Line, f.Pointer, strings.ReplaceAll(f.Message, "|", "\\|"))
		}
	}
	if len(inv.Shadow) > 0 {
		b.WriteString("\n## Shadow traffic\n\n| protocol | call | caller | count | last seen |\n|---|---|---|---:|---|\n")
		for _, e := range inv.Shadow {
			fmt.Fprintf(&b, "| %s | `%s %s` | %s | %d | %s |\n", e.Protocol, e.Action, e.Path, e.Caller, e.Count, e.LastSeen.Format(time.RFC3339))
		}
	}
	return b.String()
}
