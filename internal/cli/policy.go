package cli

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fleetgate/fleetgate/internal/model"
)

// contentFlags are the flags that give a version's content, shared by
// `versions create` and `versions update`.
type contentFlags struct {
	spec, bindings, policy string
	upstreams              []string

	// The files read, for locating the server's field errors in them.
	bindingsDoc, policyDoc *docFile
}

func (f *contentFlags) add(cmd *cobra.Command, specHelp, upstreamHelp string) {
	cmd.Flags().StringVar(&f.spec, "spec", "", specHelp)
	cmd.Flags().StringArrayVar(&f.upstreams, "upstream", nil, upstreamHelp)
	cmd.Flags().StringVar(&f.bindings, "bindings", "", "JSON or YAML file with explicit bindings (http, mqtt, coap)")
	cmd.Flags().StringVar(&f.policy, "policy", "", "JSON or YAML file with the data-plane policy (auth, rules, rate_limit, operations, validate_responses)")
}

// versionContent is the body of POST and PATCH on a version; for PATCH,
// what is nil is left as it is.
type versionContent struct {
	Version  string          `json:"version,omitempty"`
	Spec     *string         `json:"spec,omitempty"`
	Upstream *model.Upstream `json:"upstream,omitempty"`
	Bindings json.RawMessage `json:"bindings,omitempty"`
	Policy   json.RawMessage `json:"policy,omitempty"`
}

// body reads the files the flags name (all checked before anything is
// sent) and builds the request body from the flags that were given.
func (f *contentFlags) body(cmd *cobra.Command) (*versionContent, error) {
	var b versionContent
	fl := cmd.Flags()
	if fl.Changed("spec") {
		spec, err := readSpec(f.spec, cmd.InOrStdin())
		if err != nil {
			return nil, err
		}
		b.Spec = &spec
	}
	if fl.Changed("upstream") {
		b.Upstream = &model.Upstream{Targets: f.upstreams}
	}
	if fl.Changed("bindings") {
		d, err := readDocFile(f.bindings, "bindings", bindingsType)
		if err != nil {
			return nil, err
		}
		b.Bindings, f.bindingsDoc = d.json, d
	}
	if fl.Changed("policy") {
		d, err := readDocFile(f.policy, "policy", policyType)
		if err != nil {
			return nil, err
		}
		b.Policy, f.policyDoc = d.json, d
	}
	return &b, nil
}

// changed names the parts of the version the body sets.
func (b *versionContent) changed() []string {
	var out []string
	if b.Spec != nil {
		out = append(out, "spec")
	}
	if b.Upstream != nil {
		out = append(out, "upstream")
	}
	if b.Bindings != nil {
		out = append(out, "bindings")
	}
	if b.Policy != nil {
		out = append(out, "policy")
	}
	return out
}

// locate shows the server's field errors about the bindings or the policy
// at their place in the file they came from.
func (f *contentFlags) locate(err error) error {
	return locateProblem(err, f.bindingsDoc.within("/bindings"), f.policyDoc.within("/policy"))
}

// policySummary is one line about a policy for the detail view, "-" when
// the version has none.
func policySummary(p *model.Policy) string {
	var parts []string
	if p.Auth != nil && len(p.Auth.Methods) > 0 {
		parts = append(parts, "auth "+strings.Join(p.Auth.Methods, ","))
	}
	if n := len(p.Rules); n > 0 {
		parts = append(parts, plural(n, "rule"))
	}
	if l := p.RateLimit; l != nil {
		r := fmt.Sprintf("rate %d/%s", l.Rate, l.Period)
		if l.Burst > 0 {
			r += fmt.Sprintf(" burst %d", l.Burst)
		}
		parts = append(parts, r)
	}
	if n := len(p.Operations); n > 0 {
		parts = append(parts, plural(n, "operation override"))
	}
	if p.ValidateResponses != "" && p.ValidateResponses != "off" {
		parts = append(parts, "validate responses: "+p.ValidateResponses)
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, "; ")
}

// plural is "1 rule", "2 rules".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
