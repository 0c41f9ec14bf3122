package policy

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/internal/identity/devtoken"
	"github.com/fleetgate/fleetgate/internal/model"
)

// credsFixture is a snapshot with one device-token-only HTTP operation
// bound to the device, two tenants' signing keys, and tokens and PSKs in
// every state.
type credsFixture struct {
	in       *Input
	priv     ed25519.PrivateKey // tenant acme, kid k-acme
	globex   ed25519.PrivateKey // tenant globex, kid k-globex
	now      time.Time
	pskKey   []byte
	revokedT string
}

func newCredsFixture(t testing.TB) *credsFixture {
	t.Helper()
	now := time.Now()
	pub, priv, _ := ed25519.GenerateKey(nil)
	gpub, gpriv, _ := ed25519.GenerateKey(nil)
	f := &credsFixture{priv: priv, globex: gpriv, now: now, pskKey: []byte("0123456789abcdef0123456789abcdef")}
	exp := now.Add(time.Hour)
	past := now.Add(-time.Minute)
	cred := func(id, tenant, device string, kind model.CredentialKind, revoked bool) model.DeviceCredential {
		c := model.DeviceCredential{ID: id, TenantID: tenant, DeviceID: device, Kind: kind, NotAfter: &exp, CreatedAt: now}
		if revoked {
			c.RevokedAt = &past
		}
		return c
	}
	f.in = &Input{Serial: 1,
		Versions: []model.Version{{ID: "v1", TenantID: "acme", APIName: "meters", Label: "v1", State: model.StatePublished,
			Bindings: model.Bindings{HTTP: &model.HTTPBinding{BasePath: "/v1", Operations: []model.HTTPOperation{
				{Method: "POST", Path: "/meters/{id}/readings", OperationID: "push"}}}},
			Upstream: model.Upstream{Targets: []string{"http://127.0.0.1:1"}},
			Policy: model.Policy{Auth: &model.AuthPolicy{Methods: []string{"device_token"}},
				Operations: map[string]model.OperationPolicy{"push": {Bindings: []model.IdentityBinding{{Param: "id", Equals: "principal.device"}}}}}}},
		Devices: DeviceInput{
			Devices: []model.Device{
				{ID: "m1", TenantID: "acme", Status: model.DeviceActive, Model: "em-300"},
				{ID: "m2", TenantID: "acme", Status: model.DeviceSuspended},
				{ID: "m1", TenantID: "globex", Status: model.DeviceActive},
			},
			Credentials: []model.DeviceCredential{
				cred("t-ok", "acme", "m1", model.CredToken, false),
				cred("t-revoked", "acme", "m1", model.CredToken, true),
				cred("t-suspended", "acme", "m2", model.CredToken, false),
				cred("t-globex", "globex", "m1", model.CredToken, false),
				cred("p-ok", "acme", "m1", model.CredPSK, false),
				cred("p-revoked", "acme", "m1", model.CredPSK, true),
				cred("p-nokey", "acme", "m1", model.CredPSK, false),
			},
			PSKs: []PSKInput{
				{ID: "p-ok", Tenant: "acme", Device: "m1", Identity: "acme/m1/ok", Key: f.pskKey},
				{ID: "p-revoked", Tenant: "acme", Device: "m1", Identity: "acme/m1/revoked", Key: f.pskKey},
			},
			TokenKeys: []TokenKeyInput{{Tenant: "acme", KID: "k-acme", Public: pub}, {Tenant: "globex", KID: "k-globex", Public: gpub}},
		},
	}
	return f
}

func (f *credsFixture) token(t testing.TB, key ed25519.PrivateKey, kid string, mod func(c *devtoken.Claims)) string {
	t.Helper()
	c := &devtoken.Claims{Issuer: devtoken.Issuer, Subject: "m1", Tenant: "acme", ID: "t-ok",
		IssuedAt: f.now.Unix(), NotBefore: f.now.Unix(), Expiry: f.now.Add(time.Hour).Unix()}
	if mod != nil {
		mod(c)
	}
	tok, err := devtoken.Sign(key, kid, c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestDeviceTokenDecide(t *testing.T) {
	f := newCredsFixture(t)
	s := Compile(f.in, nil)
	eng := NewEngine(Options{})
	_, otherKey, _ := ed25519.GenerateKey(nil)
	tests := []struct {
		name   string
		bearer string
		apiKey string
		path   string
		status Status
		reason string
	}{
		{"valid token", f.token(t, f.priv, "k-acme", nil), "", "/v1/meters/m1/readings", Allow, ""},
		{"another device's meter", f.token(t, f.priv, "k-acme", nil), "", "/v1/meters/m2/readings", Forbidden, ReasonBinding},
		{"revoked jti", f.token(t, f.priv, "k-acme", func(c *devtoken.Claims) { c.ID = "t-revoked" }), "", "/v1/meters/m1/readings", Unauthenticated, ReasonBadCredentials},
		{"unrecorded jti", f.token(t, f.priv, "k-acme", func(c *devtoken.Claims) { c.ID = "made-up" }), "", "/v1/meters/m1/readings", Unauthenticated, ReasonBadCredentials},
		{"suspended device", f.token(t, f.priv, "k-acme", func(c *devtoken.Claims) { c.ID, c.Subject = "t-suspended", "m2" }), "", "/v1/meters/m2/readings", Unauthenticated, ReasonBadCredentials},
		{"jti of another device", f.token(t, f.priv, "k-acme", func(c *devtoken.Claims) { c.Subject = "m2" }), "", "/v1/meters/m2/readings", Unauthenticated, ReasonBadCredentials},
		{"expired", f.token(t, f.priv, "k-acme", func(c *devtoken.Claims) { c.Expiry = f.now.Add(-time.Minute).Unix() }), "", "/v1/meters/m1/readings", Unauthenticated, ReasonBadCredentials},
		{"not yet valid", f.token(t, f.priv, "k-acme", func(c *devtoken.Claims) { c.NotBefore = f.now.Add(time.Minute).Unix() }), "", "/v1/meters/m1/readings", Unauthenticated, ReasonBadCredentials},
		{"forged signature", f.token(t, otherKey, "k-acme", nil), "", "/v1/meters/m1/readings", Unauthenticated, ReasonBadCredentials},
		{"tenant claim not the key's", f.token(t, f.globex, "k-globex", nil), "", "/v1/meters/m1/readings", Unauthenticated, ReasonBadCredentials},
		{"other tenant's valid token", f.token(t, f.globex, "k-globex", func(c *devtoken.Claims) { c.Tenant, c.ID = "globex", "t-globex" }), "", "/v1/meters/m1/readings", Unauthenticated, ReasonBadCredentials},
		{"unknown kid", f.token(t, f.priv, "k-unknown", nil), "", "/v1/meters/m1/readings", Unauthenticated, ReasonBadCredentials},
		{"garbage bearer", "not-a-token", "", "/v1/meters/m1/readings", Unauthenticated, ReasonBadCredentials},
		{"api key not accepted", "", "fgk_whatever", "/v1/meters/m1/readings", Unauthenticated, ReasonMethod},
		{"nothing", "", "", "/v1/meters/m1/readings", Unauthenticated, ReasonNoCredentials},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rt, params := s.MatchHTTP("POST", tc.path, nil)
			if rt == nil {
				t.Fatal("no route")
			}
			d := eng.Decide(context.Background(), s, &Request{Protocol: HTTP, Action: "POST", Path: tc.path, Route: rt, Params: params,
				Credentials: Credentials{Bearer: tc.bearer, APIKey: tc.apiKey}, Now: f.now})
			if d.Status != tc.status || d.Reason != tc.reason {
				t.Fatalf("got %v %q (%s), want %v %q", d.Status, d.Reason, d.Detail, tc.status, tc.reason)
			}
			if d.Status == Unauthenticated && !strings.Contains(d.WWWAuthenticate, "Bearer") {
				t.Fatalf("challenge %q lacks Bearer", d.WWWAuthenticate)
			}
			if tc.status == Allow && (d.Principal.Kind != "device" || d.Principal.Device != "m1" || d.Principal.Model != "em-300" || d.Principal.Credential != "device_token:t-ok") {
				t.Fatalf("principal %+v", d.Principal)
			}
		})
	}
	// The second use of a token hits the snapshot's verified-token cache,
	// which still checks the dates: past exp + skew it is refused.
	tok := f.token(t, f.priv, "k-acme", nil)
	for _, c := range []struct {
		at   time.Time
		want Status
	}{{f.now, Allow}, {f.now, Allow}, {f.now.Add(time.Hour + devtoken.ClockSkew), Unauthenticated}, {f.now.Add(-devtoken.ClockSkew - time.Second), Unauthenticated}} {
		rt, params := s.MatchHTTP("POST", "/v1/meters/m1/readings", nil)
		d := eng.Decide(context.Background(), s, &Request{Protocol: HTTP, Action: "POST", Route: rt, Params: params, Credentials: Credentials{Bearer: tok}, Now: c.at})
		if d.Status != c.want {
			t.Fatalf("cached token at %v: %v, want %v", c.at.Sub(f.now), d.Status, c.want)
		}
	}
	if _, ok := s.devices.creds.verified.Load(tok); !ok {
		t.Fatal("verified token not cached")
	}
	if got := fmt.Sprint(Compile(f.in, nil).Routes()[0].AuthMethods()); got != "[device_token]" {
		t.Fatalf("AuthMethods %s", got)
	}
}

// TestDeviceTokenSession: a device token as the MQTT password admits the
// session only with the device id as username, and the session stays
// valid until the token is revoked or the device suspended.
func TestDeviceTokenSession(t *testing.T) {
	f := newCredsFixture(t)
	eng := NewEngine(Options{})
	s := Compile(f.in, nil)
	tok := f.token(t, f.priv, "k-acme", nil)
	for _, tc := range []struct {
		name, user string
		ok         bool
	}{{"device id", "m1", true}, {"other device", "m2", false}, {"no username", "", false}} {
		t.Run(tc.name, func(t *testing.T) {
			p, st, _ := eng.AuthenticateSession(s, Credentials{APIKey: tok, Username: tc.user}, f.now)
			if (st == Allow) != tc.ok || (tc.ok && p.Device != "m1") {
				t.Fatalf("status %v principal %+v", st, p)
			}
		})
	}
	p, _, _ := eng.AuthenticateSession(s, Credentials{APIKey: tok, Username: "m1"}, f.now)
	if !s.SessionValid(p, nil, f.now) {
		t.Fatal("fresh session invalid")
	}
	if s.SessionValid(p, nil, f.now.Add(2*time.Hour)) {
		t.Fatal("session valid after its token expired")
	}
	revoke := func(mut func(in *Input)) *Snapshot {
		g := newCredsFixture(t)
		g.in.Devices.TokenKeys = f.in.Devices.TokenKeys
		mut(g.in)
		return Compile(g.in, nil)
	}
	past := f.now.Add(-time.Second)
	revoked := revoke(func(in *Input) { in.Devices.Credentials[0].RevokedAt = &past })
	suspended := revoke(func(in *Input) { in.Devices.Devices[0].Status = model.DeviceSuspended })
	for name, s2 := range map[string]*Snapshot{"token revoked": revoked, "device suspended": suspended} {
		if s2.SessionValid(p, nil, f.now) {
			t.Fatalf("%s: session still valid", name)
		}
		if _, st, _ := eng.AuthenticateSession(s2, Credentials{APIKey: tok, Username: "m1"}, f.now); st == Allow {
			t.Fatalf("%s: token still admits", name)
		}
	}
}

func TestPSKLookup(t *testing.T) {
	f := newCredsFixture(t)
	s := Compile(f.in, nil)
	for _, tc := range []struct {
		name, identity string
		ok             bool
	}{{"live", "acme/m1/ok", true}, {"revoked", "acme/m1/revoked", false}, {"unknown", "acme/m1/nope", false}, {"empty", "", false}} {
		t.Run(tc.name, func(t *testing.T) {
			key, p, ok := s.PSK(tc.identity, f.now)
			if ok != tc.ok {
				t.Fatalf("ok = %v", ok)
			}
			if ok && (string(key) != string(f.pskKey) || p.Device != "m1" || p.Tenant != "acme" || p.Credential != "device_psk:p-ok") {
				t.Fatalf("key %q principal %+v", key, p)
			}
		})
	}
	key, p, _ := s.PSK("acme/m1/ok", f.now)
	clear(key) // the caller's copy: clearing it must not break the index
	if k2, _, _ := s.PSK("acme/m1/ok", f.now); string(k2) != string(f.pskKey) {
		t.Fatal("PSK returned the index's own slice")
	}
	if !s.PrincipalValid(p, f.now) {
		t.Fatal("PSK session invalid")
	}
	f.in.Devices.Devices[0].Status = model.DeviceQuarantined
	s2 := Compile(f.in, nil)
	if _, _, ok := s2.PSK("acme/m1/ok", f.now); ok || s2.PrincipalValid(p, f.now) {
		t.Fatal("PSK of a quarantined device still usable")
	}
}

// TestSecretsNeverPrint: PSK keys held by the snapshot input do not show
// up through fmt (any verb), JSON or slog.
func TestSecretsNeverPrint(t *testing.T) {
	f := newCredsFixture(t)
	var sb strings.Builder
	log := slog.New(slog.NewJSONHandler(&sb, nil))
	log.Info("input", "psks", f.in.Devices.PSKs, "key", f.in.Devices.PSKs[0].Key)
	j, _ := json.Marshal(f.in.Devices)
	out := sb.String() + string(j)
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%d", "%q"} {
		out += fmt.Sprintf(verb, f.in.Devices.PSKs) + fmt.Sprintf(verb, f.in.Devices.PSKs[0].Key)
	}
	for _, leak := range []string{string(f.pskKey), fmt.Sprintf("%x", f.pskKey), fmt.Sprint([]byte(f.pskKey)), "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"} {
		if strings.Contains(out, leak) {
			t.Fatalf("key material printed: %s", out)
		}
	}
}

// BenchmarkDecideDeviceToken is BenchmarkDecide's shape with a device
// token as the credential (parse + Ed25519 verify + jti lookup + identity
// binding); BenchmarkDecideDeviceTokenAPIKeyBaseline runs the same route
// shape with an API key in the same run, so the ratio is what to read.
func BenchmarkDecideDeviceToken(b *testing.B) {
	f := newCredsFixture(b)
	s := Compile(f.in, nil)
	eng := NewEngine(Options{})
	path := "/v1/meters/m1/readings"
	rt, ps := s.MatchHTTP("POST", path, nil)
	r := &Request{Protocol: HTTP, Action: "POST", Path: path, Route: rt, Params: ps, Now: f.now,
		Credentials: Credentials{Bearer: f.token(b, f.priv, "k-acme", nil)}}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if d := eng.Decide(ctx, s, r); d.Status != Allow {
			b.Fatalf("denied: %+v", d)
		}
	}
}

func BenchmarkDecideDeviceTokenAPIKeyBaseline(b *testing.B) {
	f := newFixture(b, model.StatePublished, nil)
	path := "/v1/vehicles/WVW01/battery"
	rt, ps := f.snap.MatchHTTP("GET", path, nil)
	r := &Request{Protocol: HTTP, Action: "GET", Path: path, Route: rt, Params: ps, Now: time.Now(), Credentials: Credentials{APIKey: f.key}}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if d := f.eng.Decide(ctx, f.snap, r); d.Status != Allow {
			b.Fatalf("denied: %+v", d)
		}
	}
}
