package lint

import (
	"maps"
	"regexp"
	"slices"
	"strings"
	"unicode"

	"gopkg.in/yaml.v3"

	"github.com/fleetgate/fleetgate/internal/spec"
)

// checkOperationSecurity: every operation says how callers authenticate.
// The data plane denies an operation without a requirement to everyone, so
// a missing one is a bug either way: the author forgot it, or the
// operation can never be called. Requirements must also name schemes that
// components.securitySchemes defines: the data plane cannot honour a name
// it cannot resolve, so such a requirement would not mean what it says.
func checkOperationSecurity(l *linter) {
	where := "on the operation or the document"
	if l.format == spec.FormatAsyncAPI {
		where = "on the operation or on every server it is reachable on"
	}
	for _, op := range l.ops {
		if s := l.t.At(op.loc, "security"); s.Valid() && !isSeq(s.Node) {
			l.report(s, op.name, "security must be a list of requirements; the gateway ignores this one")
		}
		if op.sec.state == secMissing {
			l.report(op.loc, op.name, "operation %s declares no security requirement, so the gateway lets no one call it; declare one %s (or `security: []` with a waiver if it is meant to be public)", clip(op.name), where)
		}
	}
	if l.format == spec.FormatAsyncAPI && !l.v2 {
		return // AsyncAPI 3 requirements are $refs, which spec.Parse has resolved
	}
	schemes := l.t.Val(l.t.Val(l.root.Node, "components"), "securitySchemes")
	checked := map[*yaml.Node]bool{}
	names := func(s loc, op string) {
		if !s.Valid() || checked[s.Node] {
			return
		}
		checked[s.Node] = true
		for _, r := range elems(s) {
			keys, locs := fields(r)
			for i, name := range keys {
				if k, _ := l.t.Get(schemes, name); k == nil {
					l.report(locs[i], op, "security scheme %q is not defined in components.securitySchemes", clip(name))
				}
			}
		}
	}
	names(l.t.At(l.root, "security"), "")
	_, servers := fields(l.t.At(l.root, "servers"))
	for _, s := range servers {
		names(l.t.At(s, "security"), "")
	}
	for _, op := range l.ops {
		if op.sec.own {
			names(op.sec.at, op.name)
		}
	}
}

// checkAnonymous: an operation open to anyone is sometimes right (a health
// check, a public catalogue), but it must be a recorded decision: a waiver
// for this rule and operation, with a reason, in the API's lint config.
func checkAnonymous(l *linter) {
	for _, op := range l.ops {
		if op.sec.state == secAnonymous {
			l.report(op.sec.at, op.name, "operation %s is explicitly anonymous: anyone who can reach the gateway can call it; if that is intended, waive anonymous-needs-waiver for it with a reason", clip(op.name))
		}
	}
}

// isObjectID reports whether a path or channel parameter names an object:
// {id}, {vin}, anything ending in id/Id/ID ({deviceId}, {device_id},
// {uuid}) or in vin ({vehicleVin}).
func isObjectID(name string) bool {
	n := strings.ToLower(name)
	return strings.HasSuffix(n, "id") || strings.HasSuffix(n, "vin")
}

// checkObjectBinding is the Nissan rule. In 2016 the Nissan Leaf's
// companion API identified the car by the VIN in the request and checked
// nothing else; VINs are visible through the windscreen and largely
// sequential, so anyone could read another owner's trip history and run
// their climate control (broken object-level authorisation, OWASP API1). An
// operation that takes an object identifier must therefore tie it to the
// caller: an identity binding on the parameter (equals a principal
// attribute, or names an object the principal owns), or a CEL rule that
// reads params.<name>.
func checkObjectBinding(l *linter) {
	for _, op := range l.ops {
		for _, name := range templateNames(op.template) {
			if !isObjectID(name) || l.bound(op, name) {
				continue
			}
			l.report(op.loc, op.name, "operation %s trusts the object identifier {%s}: no identity binding or rule ties it to the caller, so anyone who knows or guesses an identifier gets the object (the 2016 Nissan Leaf API trusted a VIN); bind it in the policy of %q, e.g. {param: %s, owned: <type>}", clip(op.name), clip(name), clip(op.keys[0]), clip(name))
		}
	}
}

// bound reports whether the policy checks parameter name of op.
func (l *linter) bound(op *operation, name string) bool {
	if l.pol == nil {
		return false
	}
	re := l.ruleRe[name]
	if re == nil {
		q := regexp.QuoteMeta(name)
		// params.vin, params["vin"], params['vin'] (CEL member and index forms).
		re = regexp.MustCompile(`(^|[^\w.])params\s*(\.\s*` + q + `(\W|$)|\[\s*("` + q + `"|'` + q + `')\s*\])`)
		l.ruleRe[name] = re
	}
	uses := func(rules []string) bool {
		return slices.ContainsFunc(rules, re.MatchString)
	}
	for _, k := range op.keys {
		p, ok := l.pol.Operations[k]
		if !ok {
			continue
		}
		for _, b := range p.Bindings {
			if b.Param == name && (b.In == "" || b.In == "path") && (b.Equals != "" || b.Owned != "") {
				return true
			}
		}
		if uses(p.Rules) {
			return true
		}
	}
	return uses(l.pol.Rules)
}

// secureSchemes are the URL schemes and AsyncAPI protocols that run over
// TLS or DTLS.
var secureSchemes = map[string]bool{
	"https": true, "wss": true,
	"mqtts": true, "secure-mqtt": true,
	"coaps": true, "coaps+tcp": true, "coaps+ws": true,
	"amqps": true, "kafka-secure": true,
}

// checkSecureServers: devices send credentials and location data; every
// server must be reached over TLS (or DTLS for CoAP). OpenAPI servers are
// checked at the document, path and operation level, including every value
// a {variable} in the scheme may take. A relative OpenAPI url is the
// gateway's own listener, whose TLS is configured there.
func checkSecureServers(l *linter) {
	if l.format == spec.FormatOpenAPI {
		seen := map[*yaml.Node]bool{}
		lists := []loc{l.t.At(l.root, "servers")}
		for _, op := range l.ops {
			lists = append(lists, l.t.At(op.item, "servers"), l.t.At(op.loc, "servers"))
		}
		for _, list := range lists {
			for _, s := range elems(list) {
				if seen[s.Node] {
					continue
				}
				seen[s.Node] = true
				u := l.t.At(s, "url")
				for _, scheme := range urlSchemes(l.t, s) {
					if !secureSchemes[scheme] {
						l.report(u, "", "server url uses %q, which is not encrypted: credentials and vehicle data would cross the network in clear text; use https (or wss, coaps)", clip(scheme))
						break
					}
				}
			}
		}
		return
	}
	names, servers := fields(l.t.At(l.root, "servers"))
	for i, s := range servers {
		s = l.t.Follow(s)
		field := "url"
		if !l.v2 {
			field = "host"
		}
		at := l.t.At(s, field)
		v, _ := str(at.Node)
		scheme := ""
		if j := strings.Index(v, "://"); j >= 0 {
			scheme = strings.ToLower(expandTemplate(v[:j], serverDefaults(l.t, s)))
		} else {
			at = l.t.At(s, "protocol")
			scheme, _ = str(at.Node)
			scheme = strings.ToLower(scheme)
		}
		if !at.Valid() {
			at = s
		}
		if !secureSchemes[scheme] {
			l.report(at, "", "server %s uses %q, which is not encrypted: device credentials and telemetry would cross the network in clear text; use mqtts (secure-mqtt), wss, https or coaps", clip(names[i]), clip(scheme))
		}
	}
}

// urlSchemes returns the schemes an OpenAPI server url can have: none for
// a relative url; with a {variable} in the scheme, its default and each of
// its enum values.
func urlSchemes(t *tree, s loc) []string {
	u, _ := str(t.Val(s.Node, "url"))
	i := strings.Index(u, "://")
	if i < 0 {
		return nil
	}
	tmpl := u[:i]
	vars := t.Val(s.Node, "variables")
	names := templateNames(tmpl)
	defaults := make(map[string]string, len(names))
	for _, name := range names {
		defaults[name], _ = str(t.Val(t.Val(vars, name), "default"))
	}
	out := []string{strings.ToLower(expandTemplate(tmpl, defaults))}
	for _, name := range names {
		for _, e := range items(t.Val(t.Val(vars, name), "enum")) {
			v, _ := str(e)
			vals := maps.Clone(defaults)
			vals[name] = v
			out = append(out, strings.ToLower(expandTemplate(tmpl, vals)))
		}
	}
	return out
}

// checkCredentialsInQuery: URLs end up in proxy logs, browser history,
// Referer headers and the gateway's own access log, so a credential in the
// query string leaks. Parameters are reported where they are defined, once,
// under the first operation that uses them.
func checkCredentialsInQuery(l *linter) {
	seen := map[*yaml.Node]bool{}
	for _, op := range l.ops {
		for _, p := range op.params {
			if seen[p.Node] {
				continue
			}
			seen[p.Node] = true
			in, _ := str(l.t.Val(p.Node, "in"))
			name, _ := str(l.t.Val(p.Node, "name"))
			if in == "query" && credentialName(name) {
				l.report(p, op.name, "query parameter %q looks like a credential; URLs are logged by proxies and servers, so send it in a header (Authorization, or an API key header)", clip(name))
			}
		}
	}
	names, schemes := fields(l.t.At(l.t.At(l.root, "components"), "securitySchemes"))
	for i, s := range schemes {
		s = l.t.Follow(s)
		typ, _ := str(l.t.Val(s.Node, "type"))
		in := l.t.At(s, "in")
		if v, _ := str(in.Node); (typ == "apiKey" || typ == "httpApiKey") && v == "query" {
			l.report(in, "", "security scheme %q sends the API key in the query string, where proxies and servers log it; use in: header", clip(names[i]))
		}
	}
}

// credentialName reports whether a parameter name looks like a credential:
// a word token, password, secret, apikey, credential(s), authorization,
// jwt; auth alone; or key alone or after api, access, secret, private,
// auth, client or session. Pagination tokens (pageToken, nextToken,
// continuationToken...) are not credentials.
func credentialName(name string) bool {
	ws := words(name)
	for i, w := range ws {
		prev := ""
		if i > 0 {
			prev = ws[i-1]
		}
		switch w {
		case "password", "passwd", "pwd", "secret", "apikey", "credential", "credentials", "authorization", "jwt":
			return true
		case "auth":
			if len(ws) == 1 {
				return true
			}
		case "token":
			switch prev {
			case "page", "next", "prev", "previous", "continuation", "cursor", "sync", "resume":
			default:
				return true
			}
		case "key":
			switch prev {
			case "", "api", "access", "secret", "private", "auth", "client", "session":
				return true
			}
		}
	}
	return false
}

// words splits a name into lower-case words at non-alphanumerics and
// camelCase boundaries: "X-Api-Key" and "apiKey" give [api key].
func words(s string) []string {
	var out []string
	var cur []rune
	flush := func() {
		if len(cur) > 0 {
			out = append(out, strings.ToLower(string(cur)))
			cur = cur[:0]
		}
	}
	rs := []rune(s)
	for i, r := range rs {
		switch {
		case !unicode.IsLetter(r) && !unicode.IsDigit(r):
			flush()
			continue
		case unicode.IsUpper(r) && i > 0 && (unicode.IsLower(rs[i-1]) || (i+1 < len(rs) && unicode.IsLower(rs[i+1]) && unicode.IsUpper(rs[i-1]))):
			flush()
		}
		cur = append(cur, r)
	}
	flush()
	if len(out) > 1 && out[0] == "x" {
		out = out[1:] // X-Api-Key
	}
	return out
}

// checkErrorResponses: clients (and device firmware, which cannot be
// patched quickly) must be written to handle the gateway's own refusals:
// 401 unauthenticated, 403 forbidden by a binding or rule, 429 rate
// limited. A 4XX range response covers all three.
func checkErrorResponses(l *linter) {
	if l.format != spec.FormatOpenAPI {
		return
	}
	for _, op := range l.ops {
		if op.sec.state != secSecured {
			continue
		}
		resp := l.t.At(op.loc, "responses")
		if k, _ := l.t.Get(resp.Node, "4XX"); k != nil {
			continue
		}
		if k, _ := l.t.Get(resp.Node, "4xx"); k != nil {
			continue
		}
		var missing []string
		for _, code := range [...]string{"401", "403", "429"} {
			if k, _ := l.t.Get(resp.Node, code); k == nil {
				missing = append(missing, code)
			}
		}
		if len(missing) == 0 {
			continue
		}
		at := resp
		if !at.Valid() {
			at = op.loc
		}
		l.report(at, op.name, "secured operation %s does not declare the %s response(s) the gateway returns on refused calls; clients need them documented to handle them", clip(op.name), strings.Join(missing, ", "))
	}
}

// checkDeprecatedSuccessor: a deprecated operation must tell its clients
// where to go before it is retired. Deprecation without a successor leaves
// devices in the field with no migration path.
func checkDeprecatedSuccessor(l *linter) {
	for _, op := range l.ops {
		dep := l.t.At(op.loc, "deprecated")
		if !isTrue(dep.Node) {
			continue
		}
		if s, _ := str(l.t.Val(op.loc.Node, "x-fleetgate-successor")); strings.TrimSpace(s) != "" {
			continue
		}
		l.report(dep, op.name, "deprecated operation %s names no successor; set x-fleetgate-successor to the operation (or version) clients should move to", clip(op.name))
	}
}
