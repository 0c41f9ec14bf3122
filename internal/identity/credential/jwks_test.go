package credential

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestKeyRotation runs a rotation with the production timing: a token with
// a new kid verifies as soon as the issuer publishes the key, without a
// restart, and the retired key stops verifying once that refresh dropped it.
func TestKeyRotation(t *testing.T) {
	k := keys(t)
	srv := newJWKSServer(t, jwk(t, "2024", &k.rsa.PublicKey))
	v, err := NewVerifier(t.Context(), JWTConfig{Issuer: testIssuer, JWKSURL: srv.url()}, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	oldTok := sign(t, jwt.SigningMethodRS256, k.rsa, "2024", claims(nil), nil)
	newTok := sign(t, jwt.SigningMethodES256, k.ec, "2025", claims(nil), nil)

	steps := []struct {
		name     string
		publish  []map[string]any // nil: leave the JWKS alone
		token    string
		reason   string
		wantHits int64
	}{
		{name: "old key before rotation", token: oldTok, wantHits: 1},
		{name: "issuer publishes both", publish: []map[string]any{jwk(t, "2024", &k.rsa.PublicKey), jwk(t, "2025", &k.ec.PublicKey)}, token: oldTok, wantHits: 1},
		{name: "issuer retires the old key", publish: []map[string]any{jwk(t, "2025", &k.ec.PublicKey)}, token: oldTok, wantHits: 1},
		{name: "new kid refreshes and verifies", token: newTok, wantHits: 2},
		{name: "old kid gone after that refresh", token: oldTok, reason: ReasonUnknownKey, wantHits: 2},
		{name: "new kid keeps verifying from cache", token: newTok, wantHits: 2},
	}
	for _, st := range steps {
		if st.publish != nil {
			srv.setKeys(t, st.publish...)
		}
		_, err := v.Verify(st.token, testNow)
		if e, _ := err.(*Error); (e == nil && st.reason != "") || (e != nil && e.Reason != st.reason) {
			t.Fatalf("%s: Verify error %v, want reason %q", st.name, err, st.reason)
		}
		if got := srv.hits.Load(); got != st.wantHits {
			t.Fatalf("%s: %d JWKS fetches, want %d", st.name, got, st.wantHits)
		}
	}
	if err := v.Health(); err != nil {
		t.Fatalf("Health: %v", err)
	}
}

// TestUnknownKidRateLimited checks that random kids cannot make the gateway
// hammer the issuer, and that refused requests do not wait for the limiter.
func TestUnknownKidRateLimited(t *testing.T) {
	k := keys(t)
	srv := newJWKSServer(t, jwk(t, "r1", &k.rsa.PublicKey))
	// Tokens are signed before the clock starts: RSA signing under a loaded
	// machine took longer than the refresh gap and let extra refreshes in.
	toks := make([]string, 50)
	for i := range toks {
		toks[i] = sign(t, jwt.SigningMethodRS256, k.rsa, "random-"+string(rune('a'+i%26)), claims(nil), nil)
	}
	v := jwksVerifier(t, srv, jwksTiming{refreshEvery: time.Hour, minRefreshGap: time.Second, fetchTimeout: 5 * time.Second}, nil)
	start := time.Now()
	for _, tok := range toks {
		wantReason(t, errOnly(v.Verify(tok, testNow)), ReasonUnknownKey)
	}
	if got := srv.hits.Load(); got != 2 {
		t.Fatalf("%d JWKS fetches for 50 unknown kids, want 2 (start + one refresh)", got)
	}
	if d := time.Since(start); d > 3*time.Second { // a wait on the limiter would take its full 30 s gap
		t.Fatalf("50 refused verifications took %v: callers waited on the rate limiter", d)
	}
	// Once the gap has passed, an unknown kid may refresh again.
	srv.setKeys(t, jwk(t, "r1", &k.rsa.PublicKey), jwk(t, "r2", &k.rsa2.PublicKey))
	eventually(t, "a second refresh", func() bool {
		_, err := v.Verify(sign(t, jwt.SigningMethodRS256, k.rsa2, "r2", claims(nil), nil), testNow)
		return err == nil
	})
	if got := srv.hits.Load(); got != 3 {
		t.Fatalf("%d JWKS fetches, want 3", got)
	}
}

// TestPeriodicRefresh checks that a revoked key stops verifying without any
// unknown kid to trigger a refresh, and that Close stops the refresher.
func TestPeriodicRefresh(t *testing.T) {
	k := keys(t)
	srv := newJWKSServer(t, jwk(t, "r1", &k.rsa.PublicKey))
	v := jwksVerifier(t, srv, jwksTiming{refreshEvery: 20 * time.Millisecond, minRefreshGap: time.Hour, fetchTimeout: 5 * time.Second}, nil)
	tok := sign(t, jwt.SigningMethodRS256, k.rsa, "r1", claims(nil), nil)
	wantReason(t, errOnly(v.Verify(tok, testNow)), "")

	srv.setKeys(t, jwk(t, "r2", &k.rsa2.PublicKey)) // r1 revoked
	eventually(t, "the revoked key to be refused", func() bool {
		_, err := v.Verify(tok, testNow)
		e, _ := err.(*Error)
		return e != nil && e.Reason == ReasonUnknownKey
	})

	v.Close()
	time.Sleep(50 * time.Millisecond) // let a fetch in flight finish
	after := srv.hits.Load()
	time.Sleep(100 * time.Millisecond)
	if got := srv.hits.Load(); got != after {
		t.Fatalf("JWKS fetched %d times after Close", got-after)
	}
}

// TestJWKSFetchLimits checks the transport rules: size cap, redirects,
// status codes, time-outs, headers that name other key locations, and
// recovery once the endpoint behaves again.
func TestJWKSFetchLimits(t *testing.T) {
	k := keys(t)
	good := newJWKSServer(t, jwk(t, "r1", &k.rsa.PublicKey))
	goodBody := *good.body.Load()
	// padded is goodBody grown to n bytes with whitespace inside the JSON
	// object, so that a decoder must read all n bytes to finish.
	padded := func(n int) []byte {
		b := bytes.Clone(goodBody[:len(goodBody)-1])
		b = append(b, bytes.Repeat([]byte(" "), n-len(goodBody))...)
		return append(b, '}')
	}
	other := newJWKSServer(t, jwk(t, "r1", &k.rsa.PublicKey)) // another origin, same TLS test certificate
	tok := sign(t, jwt.SigningMethodRS256, k.rsa, "r1", claims(nil), nil)
	fast := jwksTiming{refreshEvery: time.Hour, minRefreshGap: time.Hour, fetchTimeout: 300 * time.Millisecond}

	tests := []struct {
		name       string
		handler    http.HandlerFunc
		wantHealth string // substring of Health(); "" means healthy and tok verifies
	}{
		{name: "plain", handler: func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(goodBody) }},
		{name: "exactly 1 MiB", handler: func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(padded(maxJWKSBytes)) }},
		{name: "same-origin redirect", handler: func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/moved" {
				http.Redirect(w, r, "/moved", http.StatusFound)
				return
			}
			_, _ = w.Write(goodBody)
		}},
		{name: "oversize with length", handler: func(w http.ResponseWriter, r *http.Request) {
			body := padded(maxJWKSBytes + 1)
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			_, _ = w.Write(body)
		}, wantHealth: "exceeds"},
		{name: "oversize chunked", handler: func(w http.ResponseWriter, r *http.Request) {
			w.(http.Flusher).Flush() // no Content-Length: only the body cap can stop it
			_, _ = w.Write(padded(maxJWKSBytes + 1))
		}, wantHealth: "exceeds"},
		{name: "redirect to another host", handler: func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, other.url(), http.StatusFound)
		}, wantHealth: "another origin"},
		{name: "redirect to http", handler: func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, strings.Replace(good.url(), "https:", "http:", 1), http.StatusFound)
		}, wantHealth: "another origin"},
		{name: "redirect loop", handler: func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, r.URL.Path+"x", http.StatusFound)
		}, wantHealth: "redirects"},
		{name: "server error", handler: func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "down", http.StatusServiceUnavailable)
		}, wantHealth: "status"},
		{name: "not json", handler: func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("<html>")) }, wantHealth: "decode"},
		{name: "slow", handler: func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-time.After(2 * time.Second):
			case <-r.Context().Done():
			}
		}, wantHealth: "fetch failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			good.setHandler(tt.handler)
			before := other.hits.Load()
			v := jwksVerifier(t, good, fast, nil)
			err := v.Health()
			if tt.wantHealth == "" {
				if err != nil {
					t.Fatalf("Health: %v", err)
				}
				wantReason(t, errOnly(v.Verify(tok, testNow)), "")
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantHealth) {
				t.Fatalf("Health = %v, want it to mention %q", err, tt.wantHealth)
			}
			if got := other.hits.Load() - before; got != 0 {
				t.Fatalf("the other origin was fetched %d times", got)
			}
			// Fail closed while the keys are unavailable, then recover
			// through the unknown-kid refresh once the endpoint is fixed.
			good.setHandler(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(goodBody) })
			wantReason(t, errOnly(v.Verify(tok, testNow)), "")
			if err := v.Health(); err != nil {
				t.Fatalf("Health after recovery: %v", err)
			}
		})
	}
}

// TestJWKSOnlyConfiguredURL checks that key-location headers in a token
// (RFC 7515 §4.1.2 "jku", §4.1.5 "x5u") never cause a fetch.
func TestJWKSOnlyConfiguredURL(t *testing.T) {
	k := keys(t)
	srv := newJWKSServer(t, jwk(t, "r1", &k.rsa.PublicKey))
	attacker := newJWKSServer(t, jwk(t, "evil", &k.rsa2.PublicKey))
	v := jwksVerifier(t, srv, testTiming, nil)
	tok := sign(t, jwt.SigningMethodRS256, k.rsa2, "evil", claims(nil), map[string]any{"jku": attacker.url(), "x5u": attacker.url()})
	wantReason(t, errOnly(v.Verify(tok, testNow)), ReasonUnknownKey)
	if got := attacker.hits.Load(); got != 0 {
		t.Fatalf("attacker's JWKS fetched %d times", got)
	}
}

// TestCallerClientUntouched checks that NewVerifier hardens a copy: the
// gateway may share its client with code that legitimately follows
// redirects.
func TestCallerClientUntouched(t *testing.T) {
	srv := newJWKSServer(t, jwk(t, "r1", &keys(t).rsa.PublicKey))
	client := srv.Client()
	transport := client.Transport
	v := jwksVerifier(t, srv, testTiming, nil)
	if client.Transport != transport || client.CheckRedirect != nil || client.Timeout != 0 {
		t.Fatal("NewVerifier modified the caller's http.Client")
	}
	if err := v.Health(); err != nil {
		t.Fatal(err)
	}
}

// TestJWKSNoTLSTrust checks that the default client really verifies the
// issuer's certificate (the httptest certificate is self-signed).
func TestJWKSNoTLSTrust(t *testing.T) {
	srv := newJWKSServer(t, jwk(t, "r1", &keys(t).rsa.PublicKey))
	v, err := newVerifier(context.Background(), JWTConfig{Issuer: testIssuer, JWKSURL: srv.url()}, nil, testTiming)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if err := v.Health(); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("Health = %v, want a certificate error", err)
	}
}

func TestOrigin(t *testing.T) {
	tests := []struct {
		name, a, b string
		same       bool
	}{
		{name: "default port", a: "https://IdP.example.test/jwks", b: "https://idp.example.test:443/other", same: true},
		{name: "other port", a: "https://idp.example.test/", b: "https://idp.example.test:8443/", same: false},
		{name: "other scheme", a: "https://idp.example.test/", b: "http://idp.example.test:443/", same: false},
		{name: "other host", a: "https://idp.example.test/", b: "https://idp.example.test.evil/", same: false},
		{name: "ipv6", a: "https://[::1]/", b: "https://[::1]:443/", same: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := httptest.NewRequest("GET", tt.a, nil).URL, httptest.NewRequest("GET", tt.b, nil).URL
			if got := origin(a) == origin(b); got != tt.same {
				t.Fatalf("origin(%s)=%q, origin(%s)=%q, same=%v, want %v", tt.a, origin(a), tt.b, origin(b), got, tt.same)
			}
		})
	}
}

// TestRecoveryWithoutKid checks that an issuer whose tokens carry no "kid"
// also recovers from a failed first fetch without waiting for the hourly
// refresh, and that this path respects the same rate limit.
func TestRecoveryWithoutKid(t *testing.T) {
	k := keys(t)
	srv := newJWKSServer(t, jwk(t, "e1", &k.ec.PublicKey))
	srv.setHandler(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", http.StatusBadGateway) })
	v := jwksVerifier(t, srv, testTiming, nil)
	if v.Health() == nil {
		t.Fatal("Health() = nil after a failed first fetch")
	}
	srv.handler.Store(nil)
	tok := sign(t, jwt.SigningMethodES256, k.ec, "", claims(nil), nil)
	wantReason(t, errOnly(v.Verify(tok, testNow)), "")
	if err := v.Health(); err != nil {
		t.Fatalf("Health after recovery: %v", err)
	}
	// An RS256 token without kid finds no fitting key; the refresh budget
	// is spent, so no further fetch happens.
	hits := srv.hits.Load()
	wantReason(t, errOnly(v.Verify(sign(t, jwt.SigningMethodRS256, k.rsa, "", claims(nil), nil), testNow)), ReasonUnknownKey)
	if got := srv.hits.Load(); got != hits {
		t.Fatalf("%d extra fetches despite the rate limit", got-hits)
	}
}

// TestConcurrentVerify runs verifications, unknown-kid refreshes and
// periodic refreshes at once, for the race detector.
func TestConcurrentVerify(t *testing.T) {
	k := keys(t)
	srv := newJWKSServer(t, jwk(t, "r1", &k.rsa.PublicKey), jwk(t, "e1", &k.ec.PublicKey))
	v := jwksVerifier(t, srv, jwksTiming{refreshEvery: 5 * time.Millisecond, minRefreshGap: time.Millisecond, fetchTimeout: 5 * time.Second}, nil)
	good := sign(t, jwt.SigningMethodES256, k.ec, "e1", claims(nil), nil)
	unknown := sign(t, jwt.SigningMethodES256, k.ec, "e9", claims(nil), nil)
	noKid := sign(t, jwt.SigningMethodES256, k.ec, "", claims(nil), nil)
	done := make(chan error, 8)
	for i := range 8 {
		go func() {
			var err error
			for j := range 50 {
				switch (i + j) % 3 {
				case 0:
					_, err = v.Verify(good, testNow)
				case 1:
					if _, e := v.Verify(unknown, testNow); e == nil {
						err = errors.New("unknown kid verified")
					}
				case 2:
					_, err = v.Verify(noKid, testNow)
				}
				if err != nil {
					break
				}
			}
			done <- err
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
