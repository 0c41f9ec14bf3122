package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/spf13/cobra"
)

// applyRequest is the body of POST /apply: the fleet document plus dry_run.
type applyRequest struct {
	fleetDoc
	DryRun bool `json:"dry_run"`
}

// applyAnswer is the server's plan and whether it was carried out.
type applyAnswer struct {
	Plan    []planItem `json:"plan"`
	Applied bool       `json:"applied"`
}

type planItem struct {
	Action  string   `json:"action"` // create, update, unchanged
	Kind    string   `json:"kind"`   // tenant, api, version
	Name    string   `json:"name"`   // tenant/api/version path
	Changes []string `json:"changes,omitempty"`
}

// errNotApplied reports a server that planned changes but did not make them
// on a real (not dry) run; it must not look like success to a script.
var errNotApplied = errors.New("the server did not apply the plan")

func (a *app) applyCmd() *cobra.Command {
	var file string
	var dryRun, verbose bool
	cmd := &cobra.Command{
		Use:   "apply -f FLEET.yaml [--dry-run]",
		Short: "Create or update tenants, APIs, versions and their policies from a fleet document",
		Long: `Create or update tenants, APIs and versions from a fleet document.

The document is YAML and strict: unknown keys are errors. A version gives its
spec inline (spec: |) or as spec_file, and its data-plane policy inline
(policy:) or as policy_file (JSON or YAML, checked just as strictly); files are
relative to the document's directory. A version without policy keeps the one
it has; policy: {} removes it. Objects missing from the document are left
alone. The server plans and applies the whole document in one transaction;
--dry-run shows the plan only. Errors the server finds are shown at their
place in the document (or in the policy file).

  tenants:                # optional, needs a system admin
    - id: acme
      display_name: ACME
  apis:
    - name: vehicles
      tenant: acme        # optional, default: your tenant
      owner: fleet-team
      versions:
        - version: v1
          upstream: {targets: ["http://127.0.0.1:9000"]}
          spec_file: vehicles-v1.yaml
          policy:
            auth: {methods: [api_key, jwt], jwt: {issuer: "https://id.example", jwks_url: "https://id.example/jwks"}}
            rate_limit: {rate: 100, period: 1m, burst: 20}
            operations:
              getVehicle:
                bindings: [{param: vin, owned: vehicle}]
        - version: v2
          spec_file: vehicles-v2.yaml
          policy_file: policies/vehicles-v2.yaml`,
		Args: cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, s *session, _ []string) error {
			doc, err := loadFleet(file, s.cmd.InOrStdin())
			if err != nil {
				return err
			}
			var ans applyAnswer
			raw, err := s.call(ctx, http.MethodPost, "/apply", applyRequest{fleetDoc: *doc, DryRun: dryRun}, &ans)
			if err != nil {
				return locateProblem(err, doc.locate)
			}
			if s.json {
				if err := printJSON(s.stdout, raw); err != nil {
					return err
				}
			} else if err := printPlan(s.stdout, ans, dryRun, verbose); err != nil {
				return err
			}
			if !dryRun && !ans.Applied && pending(ans.Plan) > 0 {
				return errNotApplied
			}
			return nil
		}),
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "fleet document, - for stdin (required)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show the plan without changing anything")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "also list unchanged objects")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

// pending counts the plan items that change something.
func pending(plan []planItem) int {
	n := 0
	for _, p := range plan {
		if p.Action != "unchanged" {
			n++
		}
	}
	return n
}

// planSigns are the diff markers of plan actions.
var planSigns = map[string]string{"create": "+", "update": "~", "unchanged": "=", "delete": "-"}

// printPlan prints the plan as a diff, one line per object with its changes
// indented below, then a summary and the outcome. Unchanged objects are
// shown only with verbose, since in a large fleet they bury the changes.
func printPlan(w io.Writer, ans applyAnswer, dryRun, verbose bool) error {
	counts := map[string]int{}
	for _, p := range ans.Plan {
		counts[p.Action]++
		if p.Action == "unchanged" && !verbose {
			continue
		}
		sign, ok := planSigns[p.Action]
		if !ok {
			sign = "?"
		}
		fmt.Fprintf(w, "%s %s %s %s\n", sign, sanitize(p.Action), sanitize(p.Kind), sanitize(p.Name))
		for _, c := range p.Changes {
			fmt.Fprintf(w, "    %s\n", sanitize(c))
		}
	}
	summary := fmt.Sprintf("Plan: %d to create, %d to update, %d unchanged", counts["create"], counts["update"], counts["unchanged"])
	if n := counts["delete"]; n > 0 {
		summary += fmt.Sprintf(", %d to delete", n)
	}
	if n := len(ans.Plan) - counts["create"] - counts["update"] - counts["unchanged"] - counts["delete"]; n > 0 {
		summary += fmt.Sprintf(", %d other", n)
	}
	fmt.Fprintln(w, summary+".")
	var err error
	switch {
	case dryRun:
		_, err = fmt.Fprintln(w, "Dry run: nothing changed.")
	case ans.Applied:
		_, err = fmt.Fprintln(w, "Applied.")
	case pending(ans.Plan) == 0:
		_, err = fmt.Fprintln(w, "Nothing to change.")
	default:
		_, err = fmt.Fprintln(w, "Not applied.")
	}
	return err
}
