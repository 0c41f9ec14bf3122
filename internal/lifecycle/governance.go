package lifecycle

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/policy"
	"github.com/fleetgate/fleetgate/internal/spec"
	"github.com/fleetgate/fleetgate/internal/spec/diff"
	"github.com/fleetgate/fleetgate/internal/spec/lint"
	"github.com/fleetgate/fleetgate/internal/store"
	"github.com/fleetgate/fleetgate/internal/usage"
	"github.com/fleetgate/fleetgate/internal/usage/usagestore"
)

// Governance holds the node-wide defaults of the governance checks; each
// tenant adjusts them with its stored settings (see Settings), read inside
// every transition's transaction.
type Governance struct {
	// Budget is the default maximum number of active (published +
	// deprecated) versions per API (0: DefaultBudget).
	Budget int
	// RetireWindow is the default window within which a call to a version
	// refuses its retirement without force (0: DefaultRetireWindow).
	RetireWindow time.Duration
	// Usage holds the calls not yet flushed to the store; the retirement
	// check reads the store's usage plus these (nil: the store's only).
	Usage *usage.Recorder
}

// Checks returns the governance checks in the order they run.
func (g Governance) Checks() []Check {
	return []Check{g.lintOnSubmit, breakingOnSubmit, nearDuplicatesOnSubmit, g.budgetOnPublish, collisionsOnPublish, g.retireWhenUnused}
}

// liveStates are the states whose routes the data plane serves.
var liveStates = []model.State{model.StatePublished, model.StateDeprecated, model.StateBlocked}

// lintOnSubmit runs the security ruleset when a draft is submitted; errors
// block submission, and every finding is returned with the refusal.
func (g Governance) lintOnSubmit(tx store.Tx, r *Request) error {
	if r.To != model.StateInReview || r.Version.Spec == nil {
		return nil
	}
	doc, err := spec.Parse([]byte(r.Version.Spec.Content))
	if err != nil {
		return &CheckError{Check: "spec", Detail: err.Error(), Field: "/spec"}
	}
	set, err := g.Settings(tx, r.Version.TenantID)
	if err != nil {
		return err
	}
	fs := lint.Lint(doc, &r.Version.Policy, set.LintConfig(&r.Version.Policy))
	if !lint.HasErrors(fs) {
		return nil
	}
	n := 0
	var first []string
	for _, f := range fs {
		if f.Level == lint.LevelError {
			n++
			if len(first) < 3 {
				first = append(first, fmt.Sprintf("%s at line %d (%s): %s", f.Rule, f.Line, f.Pointer, f.Message))
			}
		}
	}
	return &CheckError{Check: "lint", Detail: fmt.Sprintf("%d lint error(s) block submission: %s", n, strings.Join(first, "; ")), Data: fs}
}

// LintConfig is the lint configuration a version carries: its waivers
// (Settings.LintConfig adds the tenant's rule levels).
func LintConfig(p *model.Policy) lint.Config {
	var c lint.Config
	for _, w := range p.LintWaivers {
		c.Waivers = append(c.Waivers, lint.Waiver{Rule: w.Rule, Operation: w.Operation, Reason: w.Reason})
	}
	return c
}

// predecessor is the highest live version of the same API below v.
func predecessor(tx store.Tx, v *model.Version) (*model.Version, error) {
	vs, err := tx.ListVersions(v.TenantID, v.APIID, store.Page{Limit: 1000})
	if err != nil {
		return nil, err
	}
	var best *model.Version
	for i := range vs {
		c := &vs[i]
		if c.ID == v.ID || (c.State != model.StatePublished && c.State != model.StateDeprecated) {
			continue
		}
		if cmp, err := policy.SemverCompare(c.Label, v.Label); err != nil || cmp >= 0 {
			continue
		}
		if best == nil {
			best = c
		} else if cmp, _ := policy.SemverCompare(c.Label, best.Label); cmp > 0 {
			best = c
		}
	}
	return best, nil
}

// breakingOnSubmit refuses breaking changes against the predecessor unless
// the version is a new major.
func breakingOnSubmit(tx store.Tx, r *Request) error {
	if r.To != model.StateInReview || r.Version.Spec == nil {
		return nil
	}
	prev, err := predecessor(tx, r.Version)
	if err != nil || prev == nil || prev.Spec == nil {
		return err
	}
	oldDoc, err1 := spec.Parse([]byte(prev.Spec.Content))
	newDoc, err2 := spec.Parse([]byte(r.Version.Spec.Content))
	if err1 != nil || err2 != nil {
		return nil // the spec check reports the new one; an old one that no longer parses cannot be compared
	}
	cs := diff.Compare(oldDoc, newDoc)
	if !diff.RequiresMajor(cs, prev.Label, r.Version.Label) {
		return nil
	}
	var lines []string
	for _, c := range cs {
		if c.Breaking && len(lines) < 5 {
			lines = append(lines, c.String())
		}
	}
	return &CheckError{Check: "breaking-change", Data: cs,
		Detail: fmt.Sprintf("%s breaks clients of %s without a new major version: %s", r.Version.Label, prev.Label, strings.Join(lines, "; "))}
}

// budgetOnPublish caps active versions per API.
func (g Governance) budgetOnPublish(tx store.Tx, r *Request) error {
	if r.To != model.StatePublished || r.Version.State != model.StateInReview {
		return nil
	}
	set, err := g.Settings(tx, r.Version.TenantID)
	if err != nil {
		return err
	}
	budget := set.BudgetFor(r.Version.APIName)
	vs, err := tx.ListVersions(r.Version.TenantID, r.Version.APIID, store.Page{Limit: 1000})
	if err != nil {
		return err
	}
	var active []string
	for _, v := range vs {
		if v.ID != r.Version.ID && (v.State == model.StatePublished || v.State == model.StateDeprecated) {
			active = append(active, v.Label+" ("+string(v.State)+")")
		}
	}
	if len(active) < budget {
		return nil
	}
	sort.Strings(active)
	return &CheckError{Check: "version-budget", Data: active,
		Detail: fmt.Sprintf("API %s already has %d active versions (budget %d): %s; deprecate and retire one first",
			r.Version.APIName, len(active), budget, strings.Join(active, ", "))}
}

// collisionsOnPublish refuses a version whose operations collide with a
// live one anywhere in the gateway: the same method and path shape, the
// same MQTT channel and action, the same CoAP resource.
func collisionsOnPublish(tx store.Tx, r *Request) error {
	if r.To != model.StatePublished {
		return nil
	}
	live, err := tx.ListVersionsByState("", liveStates...)
	if err != nil {
		return err
	}
	mine := surface(r.Version)
	for i := range live {
		o := &live[i]
		if o.ID == r.Version.ID {
			continue
		}
		for k, desc := range surface(o) {
			if _, clash := mine[k]; clash {
				who := o.APIName + "/" + o.Label
				if o.TenantID != r.Version.TenantID {
					who = "a version of another tenant" // never name another tenant's objects
				}
				return &CheckError{Check: "operation-collision", Detail: fmt.Sprintf("%s is already served by %s", desc, who)}
			}
		}
	}
	return nil
}

// surface maps a version's operations to comparable keys: parameter names
// do not matter ({vin} and {id} collide).
func surface(v *model.Version) map[string]string {
	out := map[string]string{}
	shape := func(t string) string {
		segs := strings.Split(t, "/")
		for i, s := range segs {
			if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
				segs[i] = "{}"
			}
		}
		return strings.Join(segs, "/")
	}
	if h := v.Bindings.HTTP; h != nil {
		base := strings.TrimSuffix(h.BasePath, "/")
		for _, op := range h.Operations {
			out["http "+op.Method+" "+shape(base+op.Path)] = op.Method + " " + base + op.Path
		}
	}
	if m := v.Bindings.MQTT; m != nil {
		for _, c := range m.Channels {
			out["mqtt "+c.Action+" "+shape(c.Topic)] = "MQTT " + c.Action + " " + c.Topic
		}
	}
	if c := v.Bindings.CoAP; c != nil {
		for _, res := range c.Resources {
			for _, m := range res.Methods {
				out["coap "+m+" "+shape(res.Path)] = "CoAP " + m + " " + res.Path
			}
		}
	}
	return out
}

// retireWhenUnused refuses to retire a version that still has traffic
// within the window, naming who calls it, unless forced with a reason.
func (g Governance) retireWhenUnused(tx store.Tx, r *Request) error {
	if r.To != model.StateRetired {
		return nil
	}
	set, err := g.Settings(tx, r.Version.TenantID)
	if err != nil {
		return err
	}
	callers, err := usagestore.Read(tx, g.Usage, r.Version.TenantID, r.Version.ID, r.Now.Add(-set.RetireWindow))
	if err != nil {
		return err
	}
	if len(callers) == 0 {
		return nil
	}
	if r.Force {
		if strings.TrimSpace(r.Reason) == "" {
			return &CheckError{Check: "retire-in-use", Detail: "forcing the retirement of a version in use needs a reason", Field: "/reason"}
		}
		return nil
	}
	var names []string
	for i, c := range callers {
		if i == 5 {
			names = append(names, fmt.Sprintf("and %d more", len(callers)-5))
			break
		}
		who := c.Consumer
		if c.Model != "" {
			who += " [" + c.Model + " firmware " + c.Firmware + "]"
		}
		names = append(names, fmt.Sprintf("%s (%d calls, last %s)", who, c.Count, c.LastSeen.Format(time.RFC3339)))
	}
	return &CheckError{Check: "retire-in-use", Data: callers,
		Detail: fmt.Sprintf("version %s was called within the last %s by %s; migrate them, or force with a reason",
			r.Version.Label, FormatWindow(set.RetireWindow), strings.Join(names, ", "))}
}
