package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/ratelimit"
	"github.com/fleetgate/fleetgate/internal/spec"
	"github.com/fleetgate/fleetgate/internal/validate"
)

// Input is the control-plane state a snapshot is compiled from.
type Input struct {
	Serial     uint64
	Versions   []model.Version // published, deprecated, blocked and retired
	Apps       []model.Application
	Keys       []model.APIKey
	Ownerships []model.Ownership
	Devices    DeviceInput
}

// Snapshot is an immutable, compiled view of the control plane: everything
// the data plane needs to decide a request without I/O. It is replaced
// whole, never mutated.
type Snapshot struct {
	Serial uint64
	Built  time.Time
	// Routers per protocol.
	http, mqtt, coap *router
	keys             map[[32]byte]*keyEntry
	byCred           map[string]*keyEntry  // "api_key:<id>" -> entry
	pins             map[string]*Principal // cert fingerprint -> application
	owners           map[ownKey]struct{}
	devices          *DeviceIndex
	// Warnings are problems that did not stop compilation (a version
	// whose spec no longer parses is left out, for example).
	Warnings []string
}

type keyEntry struct {
	principal *Principal
	expires   *time.Time
	revoked   bool
}

type ownKey struct{ tenant, subject, objType, objID string }

// authMethod is a bit set of accepted credential kinds.
type authMethod uint8

const (
	methodAPIKey authMethod = 1 << iota
	methodJWT
	methodMTLS
	methodAnonymous
	methodDeviceToken
)

type authSpec struct {
	methods      authMethod
	apiKeyHeader string
	jwt          JWTVerifier
	subjectClaim string
}

type binding struct {
	param  string
	in     string
	equals string // principal field path
	owned  string
}

type limitSpec struct {
	name   string
	prefix string // bucket key prefix: name|tenant|
	limit  ratelimit.Limit
}

// Route is one compiled operation (HTTP method + path, MQTT channel, CoAP
// resource) of a live version.
type Route struct {
	Protocol    Protocol
	Tenant      string
	API         string
	Version     string
	VersionID   string
	State       model.State
	Sunset      *time.Time
	Successor   string
	OperationID string
	Action      string
	Template    string
	Upstream    []string
	// Command is set when the upstream is an MQTT target: the request is
	// published to a device topic instead of proxied (parsed once here).
	Command *MQTTTarget
	// Webhooks are the http(s) upstreams that telemetry published on an
	// MQTT channel of this version is forwarded to.
	Webhooks []string
	// SunsetHeader and DeprecationHeader are preformatted for HTTP.
	SunsetHeader      string
	DeprecationHeader string
	// Validator checks HTTP requests, Payload MQTT messages (nil when the
	// version has no spec or no schema).
	Validator *validate.Operation
	Payload   *validate.Message
	// ValidateResponses is "log" when responses are checked in log-only mode.
	ValidateResponses string

	auth     authSpec
	bindings []binding
	rules    []*rule
	limit    *limitSpec
	view     RequestView // constant part of the CEL request view
}

// JWTVerifier verifies bearer tokens for a route. The engine's Options
// supply a factory, so verifiers (and their JWKS caches) outlive snapshots.
type JWTVerifier interface {
	Verify(token string, now time.Time) (map[string]any, error)
}

// JWTFactory returns the verifier for a configuration.
type JWTFactory func(cfg *model.JWTPolicy) (JWTVerifier, error)

// Compile builds a snapshot. Problems confined to one version (a rule that
// no longer compiles, a colliding route) leave that version out and are
// reported in Warnings, so one bad version cannot take the gateway down;
// the control plane refuses such versions at submit time anyway.
func Compile(in *Input, jwt JWTFactory) *Snapshot {
	s := &Snapshot{
		Serial: in.Serial, Built: time.Now(),
		http: newRouter(), mqtt: newRouter(), coap: newRouter(),
		keys:   make(map[[32]byte]*keyEntry, len(in.Keys)),
		byCred: make(map[string]*keyEntry, len(in.Keys)),
		pins:   map[string]*Principal{},
		owners: make(map[ownKey]struct{}, len(in.Ownerships)),
	}
	apps := map[string]*model.Application{}
	for i := range in.Apps {
		a := &in.Apps[i]
		apps[a.TenantID+"/"+a.ID] = a
		p := appPrincipal(a, "certificate")
		for _, fp := range a.CertFingerprints {
			s.pins[fp] = p
		}
	}
	for i := range in.Keys {
		k := &in.Keys[i]
		a := apps[k.TenantID+"/"+k.AppID]
		if a == nil || len(k.Hash) != 32 {
			continue
		}
		var h [32]byte
		copy(h[:], k.Hash)
		e := &keyEntry{principal: appPrincipal(a, "api_key:"+k.ID), expires: k.ExpiresAt, revoked: k.RevokedAt != nil}
		s.keys[h] = e
		s.byCred[e.principal.Credential] = e
	}
	s.devices = BuildDeviceIndex(in.Devices)
	for _, o := range in.Ownerships {
		s.owners[ownKey{o.TenantID, o.Subject, o.ObjectType, o.ObjectID}] = struct{}{}
	}
	for i := range in.Versions {
		if err := s.addVersion(&in.Versions[i], jwt); err != nil {
			v := &in.Versions[i]
			s.Warnings = append(s.Warnings, fmt.Sprintf("%s/%s/%s left out: %v", v.TenantID, v.APIName, v.Label, err))
		}
	}
	return s
}

func appPrincipal(a *model.Application, cred string) *Principal {
	p := &Principal{Kind: "application", Tenant: a.TenantID, ID: a.Name, App: a.Name, Subject: "app:" + a.Name,
		Attributes: a.Attributes, Credential: cred, shared: true}
	p.view = p.buildView()
	return p
}

func (p *Principal) buildView() *PrincipalView {
	v := &PrincipalView{Kind: p.Kind, Tenant: p.Tenant, ID: p.ID, App: p.App, Device: p.Device, Model: p.Model,
		Firmware: p.Firmware, Subject: p.Subject, Attributes: p.Attributes, Claims: p.Claims}
	if v.Attributes == nil {
		v.Attributes = map[string]string{}
	}
	if v.Claims == nil {
		v.Claims = map[string]any{}
	}
	return v
}

// View returns the principal as CEL sees it.
func (p *Principal) View() *PrincipalView {
	if p.view == nil {
		p.view = p.buildView()
	}
	return p.view
}

// addVersion compiles every operation of v into the routers. All or
// nothing: routes are collected first and added only if all compile.
func (s *Snapshot) addVersion(v *model.Version, jwt JWTFactory) error {
	var doc *spec.Document
	var vset *validate.Set
	if v.Spec != nil {
		d, err := spec.Parse([]byte(v.Spec.Content))
		if err != nil {
			return fmt.Errorf("spec: %w", err)
		}
		doc = d
		if d.Format == spec.FormatOpenAPI {
			if vset, err = validate.CompileOpenAPI([]byte(v.Spec.Content)); err != nil {
				return fmt.Errorf("schemas: %w", err)
			}
		} else if vset, err = validate.CompileAsyncAPI([]byte(v.Spec.Content)); err != nil {
			return fmt.Errorf("schemas: %w", err)
		}
	}
	pol := &v.Policy
	base := &Route{Tenant: v.TenantID, API: v.APIName, Version: v.Label, VersionID: v.ID, State: v.State,
		Sunset: v.Sunset, Successor: v.Successor, Upstream: v.Upstream.Targets, ValidateResponses: pol.ValidateResponses}
	for _, t := range v.Upstream.Targets {
		if strings.HasPrefix(t, "http://") || strings.HasPrefix(t, "https://") {
			base.Webhooks = append(base.Webhooks, t)
		}
	}
	if len(v.Upstream.Targets) == 1 && strings.HasPrefix(v.Upstream.Targets[0], "mqtt:") {
		t, err := ParseMQTTTarget(v.Upstream.Targets[0])
		if err != nil {
			return fmt.Errorf("upstream: %w", err)
		}
		base.Command = &t
	}
	if v.State == model.StateDeprecated {
		base.DeprecationHeader = "@" + fmt.Sprint(v.UpdatedAt.Unix())
		if v.Sunset != nil {
			base.SunsetHeader = v.Sunset.UTC().Format(http.TimeFormat)
		}
	}
	type pending struct {
		r      *router
		action string
		rt     *Route
	}
	var add []pending
	mk := func(proto Protocol, action, template, opID, specPath string) (*Route, error) {
		rt := *base
		rt.Protocol, rt.Action, rt.Template, rt.OperationID = proto, action, template, opID
		if opID == "" {
			rt.OperationID = action + " " + template
		}
		op := pol.Operations[rt.OperationID]
		var sec *spec.Security
		if doc != nil && proto == HTTP {
			s := doc.Security(action, specPath)
			sec = &s
		}
		if err := rt.compile(pol, &op, sec, jwt); err != nil {
			return nil, fmt.Errorf("operation %s: %w", rt.OperationID, err)
		}
		if vset != nil {
			if proto == HTTP {
				rt.Validator = vset.Operation(action, specPath)
			}
		}
		rt.view = RequestView{Protocol: proto.String(), Action: action, Operation: rt.OperationID, API: v.APIName, Version: v.Label}
		return &rt, nil
	}
	if h := v.Bindings.HTTP; h != nil {
		basePath := strings.TrimSuffix(h.BasePath, "/")
		for _, op := range h.Operations {
			rt, err := mk(HTTP, op.Method, basePath+op.Path, op.OperationID, op.Path)
			if err != nil {
				return err
			}
			add = append(add, pending{s.http, op.Method, rt})
		}
	}
	if m := v.Bindings.MQTT; m != nil {
		for _, c := range m.Channels {
			rt, err := mk(MQTT, c.Action, c.Topic, c.OperationID, c.Topic)
			if err != nil {
				return err
			}
			if vset != nil {
				rt.Payload = vset.Channel(c.Topic)
			}
			add = append(add, pending{s.mqtt, c.Action, rt})
		}
	}
	if c := v.Bindings.CoAP; c != nil {
		for _, res := range c.Resources {
			for _, method := range res.Methods {
				rt, err := mk(CoAP, method, res.Path, "", res.Path)
				if err != nil {
					return err
				}
				add = append(add, pending{s.coap, method, rt})
			}
		}
	}
	// Check collisions without touching the live routers first.
	for _, p := range add {
		if rt, _ := p.r.match(p.action, concrete(p.rt.Template), make([]Param, 0, MaxParams)); rt != nil && rt.Template == p.rt.Template {
			return fmt.Errorf("%s %s collides with %s/%s/%s", p.action, p.rt.Template, rt.Tenant, rt.API, rt.Version)
		}
	}
	for _, p := range add {
		if err := p.r.add(p.action, p.rt.Template, p.rt); err != nil {
			return err
		}
	}
	return nil
}

// concrete replaces parameters by a placeholder so a template can be
// matched against the router to detect collisions.
func concrete(t string) string {
	segs := strings.Split(t, "/")
	for i, s := range segs {
		if _, ok := paramName(s); ok {
			segs[i] = "x"
		}
	}
	return strings.Join(segs, "/")
}

// compile resolves the operation's policy: authentication (operation
// policy, then version policy, then the spec's security requirements),
// bindings, rules and the rate limit.
func (rt *Route) compile(pol *model.Policy, op *model.OperationPolicy, sec *spec.Security, jwt JWTFactory) error {
	auth := op.Auth
	if auth == nil {
		auth = pol.Auth
	}
	rt.auth.apiKeyHeader = "X-API-Key"
	if auth != nil && len(auth.Methods) > 0 {
		for _, m := range auth.Methods {
			switch m {
			case "api_key":
				rt.auth.methods |= methodAPIKey
			case "jwt":
				rt.auth.methods |= methodJWT
			case "mtls":
				rt.auth.methods |= methodMTLS
			case "anonymous":
				rt.auth.methods |= methodAnonymous
			case "device_token":
				rt.auth.methods |= methodDeviceToken
			default:
				return fmt.Errorf("unknown auth method %q", m)
			}
		}
	} else if sec != nil && sec.Declared {
		if sec.Anonymous {
			rt.auth.methods |= methodAnonymous
		}
		if len(sec.APIKeyHeaders) > 0 {
			rt.auth.methods |= methodAPIKey
			rt.auth.apiKeyHeader = sec.APIKeyHeaders[0]
		}
		if sec.Bearer {
			rt.auth.methods |= methodJWT
		}
		if sec.MutualTLS {
			rt.auth.methods |= methodMTLS
		}
	}
	// No declaration at all: deny by default (no method accepted).
	if auth != nil && auth.APIKeyHeader != "" {
		rt.auth.apiKeyHeader = http.CanonicalHeaderKey(auth.APIKeyHeader)
	}
	if rt.auth.methods&methodJWT != 0 {
		var jc *model.JWTPolicy
		if op.Auth != nil && op.Auth.JWT != nil {
			jc = op.Auth.JWT
		} else if pol.Auth != nil {
			jc = pol.Auth.JWT
		}
		if jc == nil {
			return fmt.Errorf("JWT authentication needs policy.auth.jwt (issuer, jwks_url)")
		}
		if jwt == nil {
			return fmt.Errorf("JWT authentication is not available")
		}
		v, err := jwt(jc)
		if err != nil {
			return fmt.Errorf("jwt: %w", err)
		}
		rt.auth.jwt = v
		rt.auth.subjectClaim = jc.SubjectClaim
		if rt.auth.subjectClaim == "" {
			rt.auth.subjectClaim = "sub"
		}
	}
	for _, b := range op.Bindings {
		in := b.In
		if in == "" {
			in = "path"
		}
		if (b.Equals == "") == (b.Owned == "") {
			return fmt.Errorf("binding of %s: exactly one of equals and owned", b.Param)
		}
		rt.bindings = append(rt.bindings, binding{param: b.Param, in: in, equals: b.Equals, owned: b.Owned})
	}
	for _, expr := range append(append([]string{}, pol.Rules...), op.Rules...) {
		r, err := CompileRule(expr)
		if err != nil {
			return fmt.Errorf("rule %q: %w", expr, err)
		}
		rt.rules = append(rt.rules, r)
	}
	lim := op.RateLimit
	if lim == nil {
		lim = pol.RateLimit
	}
	if lim != nil {
		l, err := ParseLimit(lim)
		if err != nil {
			return err
		}
		name := limitName(rt, lim)
		rt.limit = &limitSpec{name: name, prefix: name + "|" + rt.Tenant + "|", limit: l}
	}
	return nil
}

// ParseLimit converts a policy rate limit.
func ParseLimit(p *model.RateLimitPolicy) (ratelimit.Limit, error) {
	d, err := time.ParseDuration(p.Period)
	if err != nil || d <= 0 {
		return ratelimit.Limit{}, fmt.Errorf("rate_limit.period %q: want a positive duration such as 1m", p.Period)
	}
	if p.Rate < 0 || p.Burst < 0 {
		return ratelimit.Limit{}, fmt.Errorf("rate_limit: rate and burst must not be negative")
	}
	burst := p.Burst
	if burst == 0 {
		burst = p.Rate
	}
	if burst < 1 {
		burst = 1
	}
	return ratelimit.Limit{Rate: p.Rate, Period: d, Burst: burst}, nil
}

func limitName(rt *Route, p *model.RateLimitPolicy) string {
	sum := sha256.Sum256([]byte(rt.VersionID + "|" + rt.OperationID))
	return rt.API + "-" + rt.Version + "-" + hex.EncodeToString(sum[:4])
}

// MatchHTTP finds the route of an HTTP request.
func (s *Snapshot) MatchHTTP(method, path string, params []Param) (*Route, []Param) {
	return s.http.match(method, path, params)
}

// MatchMQTT finds the channel route of a topic for "publish" or "subscribe".
func (s *Snapshot) MatchMQTT(action, topic string, params []Param) (*Route, []Param) {
	return s.mqtt.match(action, topic, params)
}

// MatchCoAP finds the route of a CoAP request.
func (s *Snapshot) MatchCoAP(method, path string, params []Param) (*Route, []Param) {
	return s.coap.match(method, path, params)
}

// Routes lists every route, for the inventory.
func (s *Snapshot) Routes() []*Route {
	var out []*Route
	for _, r := range []*router{s.http, s.mqtt, s.coap} {
		r.walk(func(_ string, rt *Route) { out = append(out, rt) })
	}
	return out
}

// Owns reports whether subject owns the object in tenant.
func (s *Snapshot) Owns(tenant, subject, objType, objID string) bool {
	_, ok := s.owners[ownKey{tenant, subject, objType, objID}]
	return ok
}

// AuthMethods names the credentials the route accepts, for the inventory.
func (rt *Route) AuthMethods() []string {
	var out []string
	for _, m := range []struct {
		bit  authMethod
		name string
	}{{methodAPIKey, "api_key"}, {methodJWT, "jwt"}, {methodMTLS, "mtls"}, {methodAnonymous, "anonymous"}, {methodDeviceToken, "device_token"}} {
		if rt.auth.methods&m.bit != 0 {
			out = append(out, m.name)
		}
	}
	return out
}

// Guards counts the route's identity bindings and rules, and reports
// whether it is rate limited, for the inventory.
func (rt *Route) Guards() (bindings, rules int, limited bool) {
	return len(rt.bindings), len(rt.rules), rt.limit != nil
}
