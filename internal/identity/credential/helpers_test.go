package credential

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// testNow is the verification time of every test: fixed, so that no test
// depends on the wall clock.
var testNow = time.Unix(1_700_000_000, 0)

const (
	testIssuer   = "https://idp.example.test"
	testAudience = "fleetgate"
)

// testKeys are generated once per test binary: RSA generation dominates
// the run time otherwise.
type testKeys struct {
	rsa, rsa2 *rsa.PrivateKey
	ec, ec384 *ecdsa.PrivateKey
	ed        ed25519.PrivateKey
	hmac      []byte
}

var keysOnce = sync.OnceValue(func() *testKeys {
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	k := &testKeys{hmac: []byte("0123456789abcdef0123456789abcdef")}
	var err error
	k.rsa, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	k.rsa2, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	k.ec384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	must(err)
	_, k.ed, err = ed25519.GenerateKey(rand.Reader)
	must(err)
	return k
})

func keys(t testing.TB) *testKeys {
	t.Helper()
	return keysOnce()
}

var b64 = base64.RawURLEncoding

// jwk renders a public key as a JWK map, independently of jwkset, so that
// the tests exercise parsing of the standard wire format.
func jwk(t testing.TB, kid string, pub crypto.PublicKey) map[string]any {
	t.Helper()
	m := map[string]any{"kid": kid}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		m["kty"], m["n"], m["e"] = "RSA", b64.EncodeToString(k.N.Bytes()), b64.EncodeToString(big.NewInt(int64(k.E)).Bytes())
	case *ecdsa.PublicKey:
		raw, err := k.Bytes() // 0x04 || X || Y
		if err != nil {
			t.Fatal(err)
		}
		n := (len(raw) - 1) / 2
		m["kty"], m["crv"] = "EC", k.Curve.Params().Name
		m["x"], m["y"] = b64.EncodeToString(raw[1:1+n]), b64.EncodeToString(raw[1+n:])
	case ed25519.PublicKey:
		m["kty"], m["crv"], m["x"] = "OKP", "Ed25519", b64.EncodeToString(k)
	case []byte:
		m["kty"], m["k"] = "oct", b64.EncodeToString(k)
	default:
		t.Fatalf("jwk: unsupported key %T", pub)
	}
	return m
}

// jwksServer is a real JWKS endpoint over TLS whose key set can be swapped
// while a Verifier uses it.
type jwksServer struct {
	*httptest.Server
	body atomic.Pointer[[]byte]
	hits atomic.Int64
	// handler, when set, replaces the default response.
	handler atomic.Pointer[http.HandlerFunc]
}

func newJWKSServer(t testing.TB, ks ...map[string]any) *jwksServer {
	t.Helper()
	s := &jwksServer{}
	s.setKeys(t, ks...)
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		if h := s.handler.Load(); h != nil {
			(*h)(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(*s.body.Load())
	}))
	// Handshake failures are expected in some tests; keep them out of the log.
	s.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) setKeys(t testing.TB, ks ...map[string]any) {
	t.Helper()
	if ks == nil {
		ks = []map[string]any{}
	}
	b, err := json.Marshal(map[string]any{"keys": ks})
	if err != nil {
		t.Fatal(err)
	}
	s.body.Store(&b)
}

func (s *jwksServer) setHandler(h http.HandlerFunc) { s.handler.Store(&h) }

func (s *jwksServer) url() string { return s.URL + "/.well-known/jwks.json" }

// testTiming never refreshes on its own and allows one unknown-kid refresh
// per test, which makes fetch counts deterministic.
var testTiming = jwksTiming{refreshEvery: time.Hour, minRefreshGap: time.Hour, fetchTimeout: 5 * time.Second}

func jwksVerifier(t testing.TB, srv *jwksServer, timing jwksTiming, mod func(*JWTConfig)) *Verifier {
	t.Helper()
	cfg := JWTConfig{Issuer: testIssuer, Audiences: []string{testAudience}, JWKSURL: srv.url()}
	if mod != nil {
		mod(&cfg)
	}
	v, err := newVerifier(t.Context(), cfg, srv.Client(), timing)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	return v
}

func hmacVerifier(t testing.TB, mod func(*JWTConfig)) *Verifier {
	t.Helper()
	cfg := JWTConfig{Issuer: testIssuer, Audiences: []string{testAudience}, HMACSecret: keys(t).hmac}
	if mod != nil {
		mod(&cfg)
	}
	v, err := NewVerifier(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// claims returns valid claims at testNow, changed by mod.
func claims(mod func(jwt.MapClaims)) jwt.MapClaims {
	c := jwt.MapClaims{
		"iss": testIssuer,
		"aud": testAudience,
		"sub": "device-42",
		"iat": testNow.Add(-time.Minute).Unix(),
		"exp": testNow.Add(time.Hour).Unix(),
	}
	if mod != nil {
		mod(c)
	}
	return c
}

// sign builds a token. kid "" omits the header; hdr adds or overrides
// header fields (a nil value deletes one).
func sign(t testing.TB, m jwt.SigningMethod, key any, kid string, c jwt.MapClaims, hdr map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	for k, v := range hdr {
		if v == nil {
			delete(tok.Header, k)
		} else {
			tok.Header[k] = v
		}
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// wantReason fails unless err is a *Error with the given reason ("" means
// success).
func wantReason(t testing.TB, err error, reason string) {
	t.Helper()
	if reason == "" {
		if err != nil {
			t.Fatalf("Verify: unexpected error %v", err)
		}
		return
	}
	e, ok := err.(*Error)
	if !ok {
		t.Fatalf("Verify: error %v (%T), want *Error with reason %q", err, err, reason)
	}
	if e.Reason != reason {
		t.Fatalf("Verify: reason %q (%v), want %q", e.Reason, e, reason)
	}
}

// eventually polls cond for up to 5 s.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
