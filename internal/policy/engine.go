package policy

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fleetgate/fleetgate/internal/identity/credential"
	"github.com/fleetgate/fleetgate/internal/identity/devtoken"
	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/ratelimit"
	"github.com/fleetgate/fleetgate/internal/validate"
)

// Options configure an Engine.
type Options struct {
	// Counter keeps rate-limit buckets (local or Redis).
	Counter ratelimit.Counter
	// FailClosed denies requests when the counter fails (a Redis outage);
	// the default lets them through, so a counter outage does not become
	// a fleet outage. Either way the failure is reported to OnCounterError.
	FailClosed     bool
	OnCounterError func(error)
}

// Engine decides requests against the current snapshot. It is safe for
// concurrent use; Swap replaces the snapshot atomically, and a request
// keeps the snapshot it started with.
type Engine struct {
	snap atomic.Pointer[Snapshot]
	opts Options
}

// NewEngine returns an engine serving an empty snapshot (every request is
// NotFound) until Swap.
func NewEngine(o Options) *Engine {
	e := &Engine{opts: o}
	e.snap.Store(Compile(&Input{}, nil))
	return e
}

// Snapshot returns the current snapshot.
func (e *Engine) Snapshot() *Snapshot { return e.snap.Load() }

// Swap installs s for every later request.
func (e *Engine) Swap(s *Snapshot) { e.snap.Store(s) }

// Decide evaluates r against snapshot s: lifecycle, authentication, rate
// limit, identity binding, CEL rules, schema validation. The first failing
// step decides.
func (e *Engine) Decide(ctx context.Context, s *Snapshot, r *Request) Decision {
	rt := r.Route
	if rt == nil {
		return Decision{Status: NotFound, Reason: ReasonNoRoute, Detail: "no operation is declared for " + r.Action + " " + r.Path}
	}
	d := Decision{Route: rt}
	switch rt.State {
	case model.StateRetired:
		d.Status, d.Reason, d.Detail = Gone, ReasonRetired, "version "+rt.Version+" of "+rt.API+" is retired"
		if rt.Successor != "" {
			d.Detail += "; use its successor " + rt.Successor
		}
		return d
	case model.StateBlocked:
		d.Status, d.Reason, d.Detail = Blocked, ReasonBlocked, "version "+rt.Version+" of "+rt.API+" is blocked"
		return d
	}
	p, st, reason := e.authenticate(s, rt, r)
	if st != Allow {
		d.Status, d.Reason = st, reason
		d.Detail = authDetail(reason)
		d.WWWAuthenticate = challenge(rt)
		return d
	}
	d.Principal = p
	// The rate limit is charged right after authentication, before any
	// authorization: denied requests count too, so walking identifiers
	// (the Nissan attack) is throttled like any other traffic.
	if rt.limit != nil && e.opts.Counter != nil {
		res, err := e.opts.Counter.Take(ctx, p.bucketKey(rt.limit), rt.limit.limit, 1, r.Now)
		if err != nil {
			if e.opts.OnCounterError != nil {
				e.opts.OnCounterError(err)
			}
			if e.opts.FailClosed {
				d.Status, d.Reason, d.Detail = RateLimited, ReasonRateLimited, "rate limit unavailable"
				return d
			}
		} else {
			d.RateLimit = RateLimitVerdict{Policy: rt.limit.name, Limit: rt.limit.limit, Result: res}
			d.HasRateLimit = true
			if !res.Allowed {
				d.Status, d.Reason, d.Detail = RateLimited, ReasonRateLimited, "rate limit exceeded"
				return d
			}
		}
	}
	for i := range rt.bindings {
		if !s.bound(&rt.bindings[i], rt, p, r) {
			// The same answer whether the object exists or not.
			d.Status, d.Reason, d.Detail = Forbidden, ReasonBinding, "the caller may not act on this "+rt.bindings[i].param
			return d
		}
	}
	validating := rt.Validator != nil && r.Protocol == HTTP
	if len(rt.rules) == 0 && !validating && !(rt.Payload != nil && r.Protocol == MQTT && r.Action == "publish") {
		d.Status = Allow
		return d
	}
	// The evaluation state (CEL activation, parameter map, validator input)
	// is recycled: nothing evaluated here keeps a reference to it, and a
	// fresh one per request was three of the decision's allocations.
	es := evalStates.Get().(*evalState)
	defer es.release()
	act := &es.act
	*act = activation{p: p, rt: rt, r: r, pm: es.params}
	if len(rt.rules) > 0 {
		for _, ru := range rt.rules {
			ok, err := ru.eval(act)
			if err != nil {
				d.Status, d.Reason, d.Detail = Forbidden, ReasonRuleError, "an authorization rule could not be evaluated"
				return d
			}
			if !ok {
				d.Status, d.Reason, d.Detail = Forbidden, ReasonRule, "denied by an authorization rule"
				return d
			}
		}
	}
	if validating {
		if int64(len(r.Body)) > rt.Validator.MaxBodyBytes() {
			d.Status, d.Reason, d.Detail, d.Pointer = TooLarge, ReasonInvalid, "request body too large", "/body"
			return d
		}
		act.in = validate.Input{PathParams: act.paramMap(), Query: r.Query, Header: r.Header, ContentType: r.ContentType, Body: r.Body}
		if verr := rt.Validator.Validate(&act.in); verr != nil {
			d.Status, d.Reason, d.Detail, d.Pointer = Invalid, ReasonInvalid, verr.Detail, verr.Pointer
			return d
		}
	}
	if rt.Payload != nil && r.Protocol == MQTT && r.Action == "publish" {
		if verr := rt.Payload.ValidatePayload(r.Body); verr != nil {
			d.Status, d.Reason, d.Detail, d.Pointer = Invalid, ReasonInvalid, verr.Detail, verr.Pointer
			return d
		}
	}
	d.Status = Allow
	return d
}

// anonymous is the principal of explicitly anonymous operations.
var anonymous = &Principal{Kind: "anonymous", ID: "anonymous", Subject: "anonymous"}

// authenticate finds who is calling. A presented credential that fails is
// an error even when the operation also allows anonymous access: a broken
// credential should be fixed, not silently downgraded.
func (e *Engine) authenticate(s *Snapshot, rt *Route, r *Request) (*Principal, Status, string) {
	if r.Principal != nil {
		if r.Principal.Tenant != rt.Tenant && r.Principal != anonymous {
			return nil, Unauthenticated, ReasonTenant
		}
		return r.Principal, Allow, ""
	}
	a := &rt.auth
	c := &r.Credentials
	if c.PeerCert != nil && a.methods&methodMTLS != 0 {
		if p := s.pins[string(fingerprintHex(c.PeerCert, new([64]byte)))]; p != nil && p.Tenant == rt.Tenant {
			return p, Allow, ""
		}
		if p, ok := s.devices.Principal(c.PeerCert, r.Now); ok && p.Tenant == rt.Tenant {
			return p, Allow, ""
		}
		if a.methods&(methodAPIKey|methodJWT|methodDeviceToken) == 0 {
			return nil, Unauthenticated, ReasonBadCredentials
		}
	}
	if c.APIKey != "" {
		if a.methods&methodAPIKey == 0 {
			return nil, Unauthenticated, ReasonMethod
		}
		if !credential.LooksLikeAPIKey(c.APIKey) {
			return nil, Unauthenticated, ReasonBadCredentials
		}
		k := s.keys[credential.HashAPIKey(c.APIKey)]
		if k == nil || k.revoked || (k.expires != nil && !r.Now.Before(*k.expires)) || k.principal.Tenant != rt.Tenant {
			return nil, Unauthenticated, ReasonBadCredentials
		}
		return k.principal, Allow, ""
	}
	if c.Bearer != "" {
		if a.methods&methodDeviceToken != 0 {
			p, ours := s.devices.Token(c.Bearer, r.Now)
			if p != nil && p.Tenant == rt.Tenant {
				return p, Allow, ""
			}
			if ours || p != nil || a.methods&methodJWT == 0 {
				return nil, Unauthenticated, ReasonBadCredentials
			}
		}
		if a.methods&methodJWT == 0 || a.jwt == nil {
			return nil, Unauthenticated, ReasonMethod
		}
		claims, err := a.jwt.Verify(c.Bearer, r.Now)
		if err != nil {
			return nil, Unauthenticated, ReasonBadCredentials
		}
		sub, _ := claims[a.subjectClaim].(string)
		if sub == "" {
			return nil, Unauthenticated, ReasonBadCredentials
		}
		p := &Principal{Kind: "user", Tenant: rt.Tenant, ID: sub, Subject: "user:" + sub, Claims: claims, Credential: "jwt"}
		if azp, ok := claims["azp"].(string); ok {
			p.App = azp
		}
		return p, Allow, ""
	}
	if a.methods&methodAnonymous != 0 {
		return anonymous, Allow, ""
	}
	return nil, Unauthenticated, ReasonNoCredentials
}

func authDetail(reason string) string {
	switch reason {
	case ReasonNoCredentials:
		return "credentials are required"
	case ReasonMethod:
		return "this operation does not accept that kind of credential"
	}
	return "the credentials are not valid for this API"
}

func challenge(rt *Route) string {
	var parts []string
	if rt.auth.methods&(methodJWT|methodDeviceToken) != 0 {
		parts = append(parts, `Bearer realm="fleetgate"`)
	}
	if rt.auth.methods&methodAPIKey != 0 {
		parts = append(parts, `ApiKey realm="fleetgate", header="`+rt.auth.apiKeyHeader+`"`)
	}
	return strings.Join(parts, ", ")
}

// APIKeyHeader is the header an HTTP adapter reads the API key from.
func (rt *Route) APIKeyHeader() string { return rt.auth.apiKeyHeader }

// bound checks one identity binding.
func (s *Snapshot) bound(b *binding, rt *Route, p *Principal, r *Request) bool {
	var val string
	switch b.in {
	case "path":
		for _, pr := range r.Params {
			if pr.Name == b.param {
				val = pr.Value
				break
			}
		}
	case "query":
		val = r.Query.Get(b.param)
	case "header":
		val = r.Header.Get(b.param)
	case "body":
		val = bodyField(r.Body, b.param)
	}
	if val == "" || p == anonymous {
		return false
	}
	if b.owned != "" {
		return s.Owns(rt.Tenant, p.Subject, b.owned, val)
	}
	want, ok := principalField(p, b.equals)
	return ok && want != "" && want == val
}

// principalField resolves "principal.id", "principal.attributes.region",
// "claims.vin" and the like.
func principalField(p *Principal, path string) (string, bool) {
	switch path {
	case "principal.id":
		return p.ID, true
	case "principal.subject":
		return p.Subject, true
	case "principal.app":
		return p.App, true
	case "principal.device":
		return p.Device, true
	case "principal.model":
		return p.Model, true
	}
	if k, ok := strings.CutPrefix(path, "principal.attributes."); ok {
		v, found := p.Attributes[k]
		return v, found
	}
	if k, ok := strings.CutPrefix(path, "claims."); ok {
		v, found := p.Claims[k].(string)
		return v, found
	}
	return "", false
}

// ValidBindingField reports whether an `equals` path is resolvable, for
// checks at submit time.
func ValidBindingField(path string) bool {
	switch path {
	case "principal.id", "principal.subject", "principal.app", "principal.device", "principal.model":
		return true
	}
	return strings.HasPrefix(path, "principal.attributes.") || strings.HasPrefix(path, "claims.")
}

// bodyField reads a top-level string (or number) member of a JSON body.
func bodyField(body []byte, name string) string {
	if len(body) == 0 {
		return ""
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return ""
	}
	raw, ok := m[name]
	if !ok {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}

// evalState is the recyclable per-decision evaluation state.
type evalState struct {
	act    activation
	params map[string]string
}

var evalStates = sync.Pool{New: func() any { return &evalState{params: make(map[string]string, MaxParams)} }}

func (es *evalState) release() {
	clear(es.params)
	es.act = activation{}
	evalStates.Put(es)
}

func requestView(rt *Route, r *Request) *RequestView {
	v := rt.view
	v.Path, v.ClientIP = r.Path, r.ClientIP
	return &v
}

var emptyDevice = &DeviceView{Attributes: map[string]string{}}

func deviceView(p *Principal) *DeviceView {
	if p.Kind != "device" {
		return emptyDevice
	}
	return &DeviceView{ID: p.Device, Model: p.Model, Firmware: p.Firmware, Attributes: p.View().Attributes}
}

// bucketKey returns the rate-limit bucket of this principal under l,
// cached on the principal so the hot path does not build the string.
func (p *Principal) bucketKey(l *limitSpec) string {
	if !p.shared {
		return l.prefix + p.Subject
	}
	if k, ok := p.keys.Load(l); ok {
		return k.(string)
	}
	k := l.prefix + p.Subject
	p.keys.Store(l, k)
	return k
}

// AuthenticateSession authenticates a long-lived session (an MQTT CONNECT,
// a DTLS handshake) before any route is known: the credential alone names
// the tenant. API keys and pinned client certificates are accepted; the
// returned principal is then attached to every request of the session.
func (e *Engine) AuthenticateSession(s *Snapshot, c Credentials, now time.Time) (*Principal, Status, string) {
	if c.PeerCert != nil {
		if p := s.pins[string(fingerprintHex(c.PeerCert, new([64]byte)))]; p != nil {
			return p, Allow, ""
		}
		if p, ok := s.devices.Principal(c.PeerCert, now); ok {
			return p, Allow, ""
		}
		if c.APIKey == "" {
			return nil, Unauthenticated, ReasonBadCredentials
		}
	}
	if c.APIKey != "" && devtoken.LooksLikeToken(c.APIKey) {
		// A device token as the password; the username must name the
		// device, so a token cannot be replayed under another identity.
		if p, _ := s.devices.Token(c.APIKey, now); p != nil && c.Username == p.Device {
			return p, Allow, ""
		}
		return nil, Unauthenticated, ReasonBadCredentials
	}
	if c.APIKey != "" {
		if !credential.LooksLikeAPIKey(c.APIKey) {
			return nil, Unauthenticated, ReasonBadCredentials
		}
		k := s.keys[credential.HashAPIKey(c.APIKey)]
		if k == nil || k.revoked || (k.expires != nil && !now.Before(*k.expires)) {
			return nil, Unauthenticated, ReasonBadCredentials
		}
		return k.principal, Allow, ""
	}
	return nil, Unauthenticated, ReasonNoCredentials
}

// PrincipalValid reports whether a session principal is still backed by a
// live credential in snapshot s (revoked keys and removed applications end
// their sessions).
func (s *Snapshot) PrincipalValid(p *Principal, now time.Time) bool {
	if p == nil {
		return false
	}
	if p.Kind == "device" {
		return s.devices.sessionActive(p, now)
	}
	if k := s.byCred[p.Credential]; k != nil {
		return k.principal.Tenant == p.Tenant && k.principal.ID == p.ID && !k.revoked && (k.expires == nil || now.Before(*k.expires))
	}
	// Pinned certificates: the application must still pin one.
	for _, pp := range s.pins {
		if pp.Tenant == p.Tenant && pp.ID == p.ID && p.Credential == "certificate" {
			return true
		}
	}
	return false
}
