// Package lint checks API descriptions (OpenAPI 3.x, AsyncAPI 2.x and 3.0)
// against Fleetgate's security ruleset before a version may be published.
//
// The parser (package spec) decides whether a document is well-formed
// enough to route; lint decides whether it is safe enough to publish. The
// rules encode what keeps going wrong with connected-vehicle and IoT APIs:
// operations nobody has to authenticate for, object identifiers trusted
// instead of identities, credentials in URLs, unbounded input.
//
// Every finding carries a JSON pointer and a line and column, like spec
// errors, and the operation it belongs to, so that an operator can waive
// one rule for one operation, with a recorded reason, without switching the
// rule off for the whole document.
//
// Lint does no I/O and keeps no state between calls; it is safe for
// concurrent use on the same Document.
package lint

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/spec"
)

// Level is the severity of a finding. Only LevelError findings block a
// submission (see HasErrors); LevelOff disables a rule.
type Level string

// The levels, from most to least severe.
const (
	LevelError Level = "error"
	LevelWarn  Level = "warn"
	LevelInfo  Level = "info"
	LevelOff   Level = "off"
)

// valid reports whether l is one of the four levels.
func (l Level) valid() bool {
	return l == LevelError || l == LevelWarn || l == LevelInfo || l == LevelOff
}

// Finding is one problem, located in the document.
type Finding struct {
	Rule    string `json:"rule"` // stable rule id, e.g. "operation-security"
	Level   Level  `json:"level"`
	Message string `json:"message"`
	// Pointer is an RFC 6901 JSON pointer into the document; "" for the
	// root, and for findings about the Config itself (waivers).
	Pointer string `json:"pointer"`
	Line    int    `json:"line,omitempty"` // 1-based, 0 when not in the document
	Column  int    `json:"column,omitempty"`
	// Operation is what a Waiver names: the operationId; else "METHOD
	// /path" (OpenAPI) or "action channel" (AsyncAPI 2); "" for findings
	// about the document as a whole (servers, versioning).
	Operation string `json:"operation,omitempty"`
}

// Config adjusts the ruleset for one API.
type Config struct {
	// Levels overrides the default level of rules by id; LevelOff disables
	// a rule. The meta-rule waiver-needs-reason cannot be overridden.
	Levels map[string]Level `json:"levels,omitempty"`
	// Waivers exempt single operations from single rules.
	Waivers []Waiver `json:"waivers,omitempty"`
}

// Waiver exempts the findings of Rule on Operation (as in
// Finding.Operation). A waiver must give a reason: exceptions to a security
// rule are reviewed, and a reviewer needs to know why. A waiver without one
// waives nothing and is itself an error (waiver-needs-reason).
type Waiver struct {
	Rule      string `json:"rule"`
	Operation string `json:"operation"`
	Reason    string `json:"reason"`
}

// RuleInfo describes a rule, for documentation and the admin API.
type RuleInfo struct {
	ID          string `json:"id"`
	Level       Level  `json:"level"` // the default level
	Description string `json:"description"`
}

// Rule ids of the meta-rules, which judge the Config rather than the
// document.
const (
	ruleWaiverReason = "waiver-needs-reason"
	ruleUnusedWaiver = "unused-waiver"
)

// check is one rule's logic: it reports through l.report.
type check func(l *linter)

// rule is an entry of the ruleset. fixed rules ignore Config.Levels.
type rule struct {
	RuleInfo
	run   check
	fixed bool
}

// ruleset returns the built-in rules in a stable order. It builds a fresh
// slice on each call, so nothing can change the ruleset behind Lint's back.
func ruleset() []rule {
	r := func(id string, lvl Level, run check, desc string) rule {
		return rule{RuleInfo: RuleInfo{ID: id, Level: lvl, Description: desc}, run: run}
	}
	return []rule{
		r("operation-security", LevelError, checkOperationSecurity,
			"Every operation has a security requirement, on the operation, the document or (AsyncAPI) its servers, naming defined security schemes."),
		r("anonymous-needs-waiver", LevelError, checkAnonymous,
			"An explicitly anonymous operation (security: [] or a {} requirement) needs a waiver with a reason."),
		r("object-binding", LevelError, checkObjectBinding,
			"An operation with an object identifier in its path or channel ({vin}, {deviceId}, {id}) has an identity binding or a policy rule on that parameter (the Nissan rule)."),
		r("version-in-path", LevelWarn, checkVersionInPath,
			"The API version appears in the base path (/v1), the channel prefix, or a version header parameter."),
		r("secure-servers", LevelError, checkSecureServers,
			"Servers use a TLS protocol: https, wss, mqtts/secure-mqtt, coaps."),
		r("no-credentials-in-query", LevelError, checkCredentialsInQuery,
			"No credential-like query parameter (token, key, api_key, password, secret...) and no apiKey security scheme in the query."),
		r("error-responses", LevelWarn, checkErrorResponses,
			"Secured operations declare 401, 403 and 429 responses."),
		r("bounded-schemas", LevelWarn, checkBoundedSchemas,
			"Input strings have maxLength (or enum, const, format date-time/uuid) and arrays maxItems."),
		r("body-size-limit", LevelWarn, checkBodySize,
			"Operations with a request body set x-fleetgate-max-body-bytes on the operation or the requestBody."),
		r("deprecated-successor", LevelError, checkDeprecatedSuccessor,
			"Deprecated operations name their successor in x-fleetgate-successor."),
		{RuleInfo: RuleInfo{ID: ruleWaiverReason, Level: LevelError,
			Description: "A waiver gives a non-empty reason; one without waives nothing. Cannot be overridden."}, fixed: true},
		r(ruleUnusedWaiver, LevelWarn, nil,
			"A waiver matches a finding; a stale waiver would silently exempt a future operation that reuses the name."),
	}
}

// Rules describes the built-in rules, in a stable order.
func Rules() []RuleInfo {
	rs := ruleset()
	out := make([]RuleInfo, len(rs))
	for i, r := range rs {
		out[i] = r.RuleInfo
	}
	return out
}

// level returns the effective level of r under c. An override that is not
// a valid level is ignored (Validate reports it), so a typo can never
// weaken a rule.
func (c Config) level(r rule) Level {
	if v, ok := c.Levels[r.ID]; ok && !r.fixed && v.valid() {
		return v
	}
	return r.Level
}

// Validate reports overrides and waivers that name unknown rules, invalid
// levels, and attempts to override a fixed rule, so the admin API can refuse
// a Config that would not do what its author thinks. Lint itself tolerates
// such a Config: unknown entries are ignored and invalid levels keep the
// default.
func (c Config) Validate() error {
	known := map[string]rule{}
	for _, r := range ruleset() {
		known[r.ID] = r
	}
	var errs []error
	ids := make([]string, 0, len(c.Levels))
	for id := range c.Levels {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		r, ok := known[id]
		switch lvl := c.Levels[id]; {
		case !ok:
			errs = append(errs, fmt.Errorf("levels: unknown rule %q", id))
		case r.fixed:
			errs = append(errs, fmt.Errorf("levels: rule %q cannot be overridden", id))
		case !lvl.valid():
			errs = append(errs, fmt.Errorf("levels: %q: level must be error, warn, info or off, not %q", id, lvl))
		}
	}
	for i, w := range c.Waivers {
		if _, ok := known[w.Rule]; !ok {
			errs = append(errs, fmt.Errorf("waivers[%d]: unknown rule %q", i, w.Rule))
		}
		if strings.TrimSpace(w.Reason) == "" {
			errs = append(errs, fmt.Errorf("waivers[%d]: a reason is required", i))
		}
	}
	return errors.Join(errs...)
}

// Lint runs every rule that cfg does not switch off over doc, applies the
// waivers, and returns the findings sorted by line, then rule. pol is the
// version's data-plane policy, where identity bindings and rules live; it
// may be nil (then no operation has a binding). A nil Document has no
// findings.
func Lint(doc *spec.Document, pol *model.Policy, cfg Config) []Finding {
	if doc.Root() == nil {
		return nil
	}
	l := newLinter(doc, pol)
	var out []Finding
	waiverLevel, unusedLevel := LevelError, LevelOff
	off := map[string]bool{}
	for _, r := range ruleset() {
		lvl := cfg.level(r)
		off[r.ID] = lvl == LevelOff
		switch {
		case r.ID == ruleWaiverReason:
			waiverLevel = lvl
			continue
		case r.ID == ruleUnusedWaiver:
			unusedLevel = lvl
			continue
		case lvl == LevelOff || r.run == nil:
			continue
		}
		l.rule, l.found = r.ID, nil
		r.run(l)
		for _, f := range l.found {
			f.Level = lvl
			out = append(out, f)
		}
	}
	out = applyWaivers(out, cfg, off, waiverLevel, unusedLevel)
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Rule != b.Rule {
			return a.Rule < b.Rule
		}
		if a.Column != b.Column {
			return a.Column < b.Column
		}
		if a.Pointer != b.Pointer {
			return a.Pointer < b.Pointer
		}
		return a.Operation < b.Operation
	})
	return out
}

// applyWaivers drops the findings that a waiver with a reason covers, and
// adds findings for waivers without a reason and for waivers that matched
// nothing. A waiver of a rule that is switched off is not reported as
// unused: it may be needed again when the rule is switched back on.
func applyWaivers(fs []Finding, cfg Config, off map[string]bool, reasonLevel, unusedLevel Level) []Finding {
	if len(cfg.Waivers) == 0 {
		return fs
	}
	type key struct{ rule, op string }
	valid := map[key]int{} // -> index of the first waiver with a reason
	for i, w := range cfg.Waivers {
		if _, dup := valid[key{w.Rule, w.Operation}]; strings.TrimSpace(w.Reason) != "" && !dup {
			valid[key{w.Rule, w.Operation}] = i
		}
	}
	used := make([]bool, len(cfg.Waivers))
	kept := fs[:0]
	for _, f := range fs {
		if i, ok := valid[key{f.Rule, f.Operation}]; ok {
			used[i] = true
			continue
		}
		kept = append(kept, f)
	}
	for i, w := range cfg.Waivers {
		switch {
		case strings.TrimSpace(w.Reason) == "":
			kept = append(kept, Finding{Rule: ruleWaiverReason, Level: reasonLevel, Operation: w.Operation,
				Message: fmt.Sprintf("waiver of %q for operation %q has no reason, so it waives nothing; say why the exception is safe", w.Rule, w.Operation)})
		case !used[i] && unusedLevel != LevelOff && !off[w.Rule] && valid[key{w.Rule, w.Operation}] == i:
			kept = append(kept, Finding{Rule: ruleUnusedWaiver, Level: unusedLevel, Operation: w.Operation,
				Message: fmt.Sprintf("waiver of %q for operation %q matches no finding; remove it before another operation takes the name", w.Rule, w.Operation)})
		}
	}
	return kept
}

// HasErrors reports whether any finding is at LevelError, which blocks a
// submission for review.
func HasErrors(fs []Finding) bool {
	for _, f := range fs {
		if f.Level == LevelError {
			return true
		}
	}
	return false
}
