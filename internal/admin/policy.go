package admin

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/policy"
)

// validatePolicy refuses, at submit time, a policy the data plane could
// not enforce: unknown auth methods, rules that do not compile (with their
// position), bindings to parameters the operation does not have.
func validatePolicy(p *model.Policy, b *model.Bindings) []FieldError {
	var errs []FieldError
	add := func(ptr, format string, args ...any) {
		errs = append(errs, FieldError{Pointer: ptr, Detail: fmt.Sprintf(format, args...)})
	}
	ops := operationTemplates(b)
	checkAuth := func(ptr string, a *model.AuthPolicy) {
		if a == nil {
			return
		}
		for i, m := range a.Methods {
			switch m {
			case "api_key", "jwt", "mtls", "anonymous", "device_token":
			default:
				add(fmt.Sprintf("%s/methods/%d", ptr, i), "unknown method %q; want api_key, jwt, mtls, device_token or anonymous", m)
			}
		}
		if j := a.JWT; j != nil {
			if j.Issuer == "" {
				add(ptr+"/jwt/issuer", "the expected issuer is required")
			}
			if u, err := url.Parse(j.JWKSURL); err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
				add(ptr+"/jwt/jwks_url", "an https URL of the issuer's JWKS is required")
			}
			if j.ClockSkew != "" {
				if d, err := time.ParseDuration(j.ClockSkew); err != nil || d < 0 || d > 5*time.Minute {
					add(ptr+"/jwt/clock_skew", "a duration of at most 5m")
				}
			}
		}
	}
	checkRules := func(ptr string, rules []string) {
		for i, r := range rules {
			if _, err := policy.CompileRule(r); err != nil {
				var re *policy.RuleError
				if errors.As(err, &re) {
					errs = append(errs, FieldError{Pointer: fmt.Sprintf("%s/%d", ptr, i), Detail: re.Message, Line: re.Line, Column: re.Column})
				} else {
					add(fmt.Sprintf("%s/%d", ptr, i), "%v", err)
				}
			}
		}
	}
	checkLimit := func(ptr string, l *model.RateLimitPolicy) {
		if l == nil {
			return
		}
		if _, err := policy.ParseLimit(l); err != nil {
			add(ptr, "%v", err)
		}
	}
	checkAuth("/policy/auth", p.Auth)
	checkRules("/policy/rules", p.Rules)
	checkLimit("/policy/rate_limit", p.RateLimit)
	for i, w := range p.LintWaivers {
		if strings.TrimSpace(w.Reason) == "" {
			add(fmt.Sprintf("/policy/lint_waivers/%d/reason", i), "a waiver needs a reason reviewers can judge")
		}
		if w.Rule == "" {
			add(fmt.Sprintf("/policy/lint_waivers/%d/rule", i), "name the lint rule waived")
		}
	}
	switch p.ValidateResponses {
	case "", "off", "log":
	default:
		add("/policy/validate_responses", "want off or log")
	}
	for id, op := range p.Operations {
		ptr := "/policy/operations/" + escape(id)
		tmpl, ok := ops[id]
		if !ok {
			add(ptr, "no operation %q in this version's bindings", id)
			continue
		}
		checkAuth(ptr+"/auth", op.Auth)
		checkRules(ptr+"/rules", op.Rules)
		checkLimit(ptr+"/rate_limit", op.RateLimit)
		for i, bd := range op.Bindings {
			bp := fmt.Sprintf("%s/bindings/%d", ptr, i)
			in := bd.In
			if in == "" {
				in = "path"
			}
			switch {
			case bd.Param == "":
				add(bp+"/param", "the parameter to bind is required")
			case in != "path" && in != "query" && in != "header" && in != "body":
				add(bp+"/in", "want path, query, header or body")
			case in == "path" && !strings.Contains(tmpl, "{"+bd.Param+"}"):
				add(bp+"/param", "the operation %s has no path parameter {%s}", tmpl, bd.Param)
			case (bd.Equals == "") == (bd.Owned == ""):
				add(bp, "give exactly one of equals and owned")
			case bd.Equals != "" && !policy.ValidBindingField(bd.Equals):
				add(bp+"/equals", "want principal.id, principal.subject, principal.app, principal.device, principal.model, principal.attributes.<name> or claims.<name>")
			}
		}
	}
	return errs
}

// operationTemplates maps the operation ids of a version (explicit ids, or
// "METHOD template" / topic for those without) to their templates.
func operationTemplates(b *model.Bindings) map[string]string {
	out := map[string]string{}
	if h := b.HTTP; h != nil {
		base := strings.TrimSuffix(h.BasePath, "/")
		for _, op := range h.Operations {
			id := op.OperationID
			if id == "" {
				id = op.Method + " " + base + op.Path
			}
			out[id] = base + op.Path
		}
	}
	if m := b.MQTT; m != nil {
		for _, c := range m.Channels {
			id := c.OperationID
			if id == "" {
				id = c.Action + " " + c.Topic
			}
			out[id] = c.Topic
		}
	}
	if c := b.CoAP; c != nil {
		for _, r := range c.Resources {
			for _, m := range r.Methods {
				out[m+" "+r.Path] = r.Path
			}
		}
	}
	return out
}
