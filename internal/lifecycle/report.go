package lifecycle

import (
	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/spec"
	"github.com/fleetgate/fleetgate/internal/spec/diff"
	"github.com/fleetgate/fleetgate/internal/spec/lint"
	"github.com/fleetgate/fleetgate/internal/store"
)

// Report is what a reviewer reads besides the spec: every lint finding
// (warnings included, with the version's waivers applied) and the
// changes against the predecessor that the submit checks compared it
// with. It is computed by the same functions the checks run, so the
// review shows exactly what governance judged.
type Report struct {
	Lint       []lint.Finding `json:"lint"`
	LintErrors int            `json:"lint_errors"`
	// SpecError is set when the stored spec no longer parses (it was
	// accepted by an older release); lint and diff are then empty.
	SpecError string      `json:"spec_error,omitempty"`
	Diff      *DiffReport `json:"diff"`
}

// DiffReport is the breaking-change diff against the predecessor.
type DiffReport struct {
	Against       string        `json:"against"` // the predecessor's label
	Changes       []diff.Change `json:"changes"`
	Breaking      bool          `json:"breaking"`
	RequiresMajor bool          `json:"requires_major"`
}

// ReviewReport lints v and diffs it against its highest live predecessor
// (nil Diff when there is none or either spec is missing).
func ReviewReport(tx store.Tx, v *model.Version) (*Report, error) {
	rep := &Report{Lint: []lint.Finding{}}
	if v.Spec == nil {
		return rep, nil
	}
	doc, err := spec.Parse([]byte(v.Spec.Content))
	if err != nil {
		rep.SpecError = err.Error()
		return rep, nil
	}
	rep.Lint = lint.Lint(doc, &v.Policy, LintConfig(&v.Policy))
	for _, f := range rep.Lint {
		if f.Level == lint.LevelError {
			rep.LintErrors++
		}
	}
	prev, err := predecessor(tx, v)
	if err != nil || prev == nil || prev.Spec == nil {
		return rep, err
	}
	old, err := spec.Parse([]byte(prev.Spec.Content))
	if err != nil {
		return rep, nil // an old spec that no longer parses cannot be compared, as in breakingOnSubmit
	}
	cs := diff.Compare(old, doc)
	rep.Diff = &DiffReport{Against: prev.Label, Changes: cs, Breaking: diff.Breaking(cs), RequiresMajor: diff.RequiresMajor(cs, prev.Label, v.Label)}
	if rep.Diff.Changes == nil {
		rep.Diff.Changes = []diff.Change{}
	}
	return rep, nil
}
