package devtoken

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

var t0 = time.Unix(1_800_000_000, 0)

func keyPair(t testing.TB) (ed25519.PublicKey, ed25519.PrivateKey) {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

func claims() *Claims {
	return &Claims{Issuer: Issuer, Subject: "meter-17", Tenant: "acme", ID: "jti-1",
		IssuedAt: t0.Unix(), NotBefore: t0.Unix(), Expiry: t0.Add(time.Hour).Unix()}
}

func mint(t testing.TB, priv ed25519.PrivateKey, c *Claims) string {
	tok, err := Sign(priv, "kid-1", c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func reason(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	if err == nil {
		return ""
	}
	return "?" + err.Error()
}

func TestRoundTrip(t *testing.T) {
	pub, priv := keyPair(t)
	tok := mint(t, priv, claims())
	if !LooksLikeToken(tok) {
		t.Fatalf("LooksLikeToken(%q) = false", tok)
	}
	p, err := Parse(tok)
	if err != nil || p.KID != "kid-1" || p.Claims != *claims() {
		t.Fatalf("parse: %+v %v", p, err)
	}
	if err := p.Verify(pub, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyRefuses(t *testing.T) {
	pub, priv := keyPair(t)
	otherPub, _ := keyPair(t)
	good := mint(t, priv, claims())
	h, p, s := split(good)
	b64 := base64.RawURLEncoding.EncodeToString
	with := func(f func(c *Claims)) string { c := claims(); f(c); return mint(t, priv, c) }
	tests := []struct {
		name   string
		token  string
		pub    ed25519.PublicKey
		now    time.Time
		parse  string // reason from Parse, "" if it parses
		verify string // reason from Verify
	}{
		{"good", good, pub, t0, "", ""},
		{"other key", good, otherPub, t0, "", ReasonBadSignature},
		{"payload swapped", h + "." + b64([]byte(`{"iss":"fleetgate","sub":"meter-18","tenant":"acme","jti":"jti-1","exp":1900000000}`)) + "." + s, pub, t0, "", ReasonBadSignature},
		{"expired", good, pub, t0.Add(time.Hour + ClockSkew), "", ReasonExpired},
		{"expired within skew", good, pub, t0.Add(time.Hour + ClockSkew - time.Second), "", ""},
		{"not yet valid", good, pub, t0.Add(-ClockSkew - time.Second), "", ReasonNotYetValid},
		{"nbf within skew", good, pub, t0.Add(-ClockSkew + time.Second), "", ""},
		{"no exp", with(func(c *Claims) { c.Expiry = 0 }), pub, t0, "", ReasonExpired},
		{"wrong issuer", with(func(c *Claims) { c.Issuer = "evil" }), pub, t0, "", ReasonWrongIssuer},
		{"no jti", with(func(c *Claims) { c.ID = "" }), pub, t0, "", ReasonMalformed},
		{"alg none", b64([]byte(`{"alg":"none","kid":"kid-1"}`)) + "." + p + "." + s, pub, t0, ReasonMalformed, ""},
		{"alg HS256", b64([]byte(`{"alg":"HS256","kid":"kid-1"}`)) + "." + p + "." + s, pub, t0, ReasonMalformed, ""},
		{"no kid", b64([]byte(`{"alg":"EdDSA"}`)) + "." + p + "." + s, pub, t0, ReasonMalformed, ""},
		{"crit", b64([]byte(`{"alg":"EdDSA","kid":"k","crit":["b64"]}`)) + "." + p + "." + s, pub, t0, ReasonMalformed, ""},
		{"padded base64", h + "=." + p + "." + s, pub, t0, ReasonMalformed, ""},
		{"two parts", h + "." + p, pub, t0, ReasonMalformed, ""},
		{"four parts", good + ".x", pub, t0, ReasonMalformed, ""},
		{"short signature", h + "." + p + "." + s[:20], pub, t0, ReasonMalformed, ""},
		{"float date", h + "." + b64([]byte(`{"iss":"fleetgate","exp":1.9e9}`)) + "." + s, pub, t0, ReasonMalformed, ""},
		{"oversized", strings.Repeat("a", MaxTokenBytes+1), pub, t0, ReasonMalformed, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pt, err := Parse(tc.token)
			if got := reason(err); got != tc.parse {
				t.Fatalf("Parse: reason %q, want %q", got, tc.parse)
			}
			if err != nil {
				return
			}
			if got := reason(pt.Verify(tc.pub, tc.now)); got != tc.verify {
				t.Fatalf("Verify: reason %q, want %q", got, tc.verify)
			}
		})
	}
}

func split(tok string) (string, string, string) {
	parts := strings.Split(tok, ".")
	return parts[0], parts[1], parts[2]
}

func TestSignNeedsKey(t *testing.T) {
	if _, err := Sign(nil, "k", claims()); err == nil {
		t.Fatal("signed without a key")
	}
	_, priv := keyPair(t)
	if _, err := Sign(priv, "", claims()); err == nil {
		t.Fatal("signed without a kid")
	}
}

// FuzzParse: no input makes Parse or Verify panic, and whatever Parse
// accepts under a key only verifies when it is the token that was signed.
func FuzzParse(f *testing.F) {
	pub, priv := keyPair(f)
	good := mint(f, priv, claims())
	f.Add(good)
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("..")
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := Parse(s)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error of another type: %T", err)
			}
			return
		}
		if p.Verify(pub, t0) == nil && s != good {
			t.Fatalf("forged token verified: %q", s)
		}
	})
}

// BenchmarkVerify measures the data-plane cost of a device token: parse
// plus Ed25519 verification plus claim checks. BenchmarkParse isolates the
// decoding share.
func BenchmarkVerify(b *testing.B) {
	pub, priv := keyPair(b)
	tok := mint(b, priv, claims())
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p, err := Parse(tok)
			if err != nil {
				b.Fatal(err)
			}
			if err := p.Verify(pub, t0); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkParse(b *testing.B) {
	_, priv := keyPair(b)
	tok := mint(b, priv, claims())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(tok); err != nil {
			b.Fatal(err)
		}
	}
}
