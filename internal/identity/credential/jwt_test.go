package credential

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestNewVerifierConfig(t *testing.T) {
	k := keys(t)
	srv := newJWKSServer(t, jwk(t, "r1", &k.rsa.PublicKey))
	tests := []struct {
		name      string
		cfg       JWTConfig
		wantField string // "" means valid
	}{
		{name: "hmac minimal", cfg: JWTConfig{Issuer: "i", HMACSecret: k.hmac}},
		{name: "jwks minimal", cfg: JWTConfig{Issuer: "i", JWKSURL: srv.url()}},
		{name: "max skew", cfg: JWTConfig{Issuer: "i", HMACSecret: k.hmac, ClockSkew: MaxClockSkew}},
		{name: "hs512", cfg: JWTConfig{Issuer: "i", HMACSecret: k.hmac, Algorithms: []string{"HS512"}}},
		{name: "no issuer", cfg: JWTConfig{HMACSecret: k.hmac}, wantField: "Issuer"},
		{name: "empty audience", cfg: JWTConfig{Issuer: "i", HMACSecret: k.hmac, Audiences: []string{"a", ""}}, wantField: "Audiences[1]"},
		{name: "no key source", cfg: JWTConfig{Issuer: "i"}, wantField: "JWKSURL"},
		{name: "both key sources", cfg: JWTConfig{Issuer: "i", HMACSecret: k.hmac, JWKSURL: srv.url()}, wantField: "HMACSecret"},
		{name: "short secret", cfg: JWTConfig{Issuer: "i", HMACSecret: []byte("short")}, wantField: "HMACSecret"},
		{name: "alg none", cfg: JWTConfig{Issuer: "i", HMACSecret: k.hmac, Algorithms: []string{"HS256", "none"}}, wantField: "Algorithms[1]"},
		{name: "alg None", cfg: JWTConfig{Issuer: "i", JWKSURL: srv.url(), Algorithms: []string{"None"}}, wantField: "Algorithms[0]"},
		{name: "unknown alg", cfg: JWTConfig{Issuer: "i", HMACSecret: k.hmac, Algorithms: []string{"HS257"}}, wantField: "Algorithms[0]"},
		{name: "hmac alg with jwks", cfg: JWTConfig{Issuer: "i", JWKSURL: srv.url(), Algorithms: []string{"RS256", "HS256"}}, wantField: "Algorithms[1]"},
		{name: "rsa alg with secret", cfg: JWTConfig{Issuer: "i", HMACSecret: k.hmac, Algorithms: []string{"RS256"}}, wantField: "Algorithms[0]"},
		{name: "negative skew", cfg: JWTConfig{Issuer: "i", HMACSecret: k.hmac, ClockSkew: -time.Second}, wantField: "ClockSkew"},
		{name: "skew too large", cfg: JWTConfig{Issuer: "i", HMACSecret: k.hmac, ClockSkew: MaxClockSkew + time.Second}, wantField: "ClockSkew"},
		{name: "http jwks", cfg: JWTConfig{Issuer: "i", JWKSURL: "http://idp.example.test/jwks"}, wantField: "JWKSURL"},
		{name: "relative jwks", cfg: JWTConfig{Issuer: "i", JWKSURL: "/jwks"}, wantField: "JWKSURL"},
		{name: "jwks with credentials", cfg: JWTConfig{Issuer: "i", JWKSURL: "https://u:p@idp.example.test/jwks"}, wantField: "JWKSURL"},
		{name: "jwks with fragment", cfg: JWTConfig{Issuer: "i", JWKSURL: "https://idp.example.test/jwks#x"}, wantField: "JWKSURL"},
		{name: "unparsable jwks", cfg: JWTConfig{Issuer: "i", JWKSURL: "https://idp\x7f/"}, wantField: "JWKSURL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := newVerifier(t.Context(), tt.cfg, srv.Client(), testTiming)
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("NewVerifier: %v", err)
				}
				v.Close()
				return
			}
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("NewVerifier error %v (%T), want *ConfigError", err, err)
			}
			if ce.Field != tt.wantField {
				t.Fatalf("ConfigError.Field = %q (%v), want %q", ce.Field, ce, tt.wantField)
			}
		})
	}
}

// TestVerifyJWKS covers every reason against a real JWKS server holding
// RSA, ECDSA P-256 and Ed25519 keys.
func TestVerifyJWKS(t *testing.T) {
	k := keys(t)
	pubDER, err := x509.MarshalPKIXPublicKey(&k.rsa.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	octKey := []byte("an HMAC key published by mistake!")
	encKey := jwk(t, "enc1", &k.rsa2.PublicKey)
	encKey["use"] = "enc"
	pinned := jwk(t, "pinned", &k.rsa2.PublicKey)
	pinned["alg"] = "RS256"
	srv := newJWKSServer(t,
		jwk(t, "r1", &k.rsa.PublicKey),
		jwk(t, "e1", &k.ec.PublicKey),
		jwk(t, "d1", k.ed.Public()),
		jwk(t, "p384", k.ec384.Public()),
		jwk(t, "oct1", octKey),
		encKey,
		pinned,
	)
	v := jwksVerifier(t, srv, testTiming, func(c *JWTConfig) {
		c.Algorithms = []string{"RS256", "PS256", "ES256", "EdDSA"}
	})
	// Use up the single unknown-kid refresh of testTiming, so that every
	// unknown kid below fails fast and the fetch count stays fixed.
	wantReason(t, errOnly(v.Verify(sign(t, jwt.SigningMethodRS256, k.rsa, "nope", claims(nil), nil), testNow)), ReasonUnknownKey)

	rs := func(c jwt.MapClaims, hdr map[string]any) string {
		return sign(t, jwt.SigningMethodRS256, k.rsa, "r1", c, hdr)
	}
	valid := rs(claims(nil), nil)
	parts := strings.Split(valid, ".")
	tests := []struct {
		name   string
		token  string
		reason string
	}{
		{name: "rs256", token: valid},
		{name: "ps256", token: sign(t, jwt.SigningMethodPS256, k.rsa, "r1", claims(nil), nil)},
		{name: "es256", token: sign(t, jwt.SigningMethodES256, k.ec, "e1", claims(nil), nil)},
		{name: "eddsa", token: sign(t, jwt.SigningMethodEdDSA, k.ed, "d1", claims(nil), nil)},
		{name: "no kid picks the fitting key", token: sign(t, jwt.SigningMethodES256, k.ec, "", claims(nil), nil)},
		{name: "jwk alg pin honoured", token: sign(t, jwt.SigningMethodRS256, k.rsa2, "pinned", claims(nil), nil)},
		{name: "aud array", token: rs(claims(func(c jwt.MapClaims) { c["aud"] = []string{"other", testAudience} }), nil)},

		{name: "oversize", token: rs(claims(func(c jwt.MapClaims) { c["pad"] = strings.Repeat("x", MaxTokenBytes) }), nil), reason: ReasonMalformed},
		{name: "empty", token: "", reason: ReasonMalformed},
		{name: "two segments", token: parts[0] + "." + parts[1], reason: ReasonMalformed},
		{name: "bad base64 header", token: "!!." + parts[1] + "." + parts[2], reason: ReasonMalformed},
		{name: "header not json", token: b64.EncodeToString([]byte("{")) + "." + parts[1] + "." + parts[2], reason: ReasonMalformed},
		{name: "payload not json", token: parts[0] + "." + b64.EncodeToString([]byte("[1]")) + "." + parts[2], reason: ReasonMalformed},
		{name: "padded signature", token: valid + "==", reason: ReasonMalformed},
		{name: "missing alg", token: rs(claims(nil), map[string]any{"alg": nil}), reason: ReasonMalformed},
		{name: "kid not a string", token: rs(claims(nil), map[string]any{"kid": 7}), reason: ReasonMalformed},
		{name: "crit header", token: rs(claims(nil), map[string]any{"crit": []string{"exp"}}), reason: ReasonMalformed},
		{name: "exp not a number", token: rs(claims(func(c jwt.MapClaims) { c["exp"] = "never" }), nil), reason: ReasonMalformed},
		{name: "nbf not a number", token: rs(claims(func(c jwt.MapClaims) { c["nbf"] = true }), nil), reason: ReasonMalformed},
		{name: "aud not strings", token: rs(claims(func(c jwt.MapClaims) { c["aud"] = []any{1} }), nil), reason: ReasonMalformed},
		{name: "aud an object", token: rs(claims(func(c jwt.MapClaims) { c["aud"] = map[string]any{} }), nil), reason: ReasonMalformed},

		{name: "signature of other key", token: sign(t, jwt.SigningMethodRS256, k.rsa2, "r1", claims(nil), nil), reason: ReasonBadSignature},
		{name: "payload swapped", token: parts[0] + "." + b64.EncodeToString([]byte(`{"iss":"`+testIssuer+`","aud":"fleetgate","exp":1900000000,"sub":"admin"}`)) + "." + parts[2], reason: ReasonBadSignature},
		// rsa2 is published only as "enc" and as RS256-pinned: neither may check PS256.
		{name: "no kid, no key verifies", token: sign(t, jwt.SigningMethodPS256, k.rsa2, "", claims(nil), nil), reason: ReasonBadSignature},

		{name: "unknown kid", token: sign(t, jwt.SigningMethodRS256, k.rsa, "r9", claims(nil), nil), reason: ReasonUnknownKey},
		{name: "enc key", token: sign(t, jwt.SigningMethodRS256, k.rsa2, "enc1", claims(nil), nil), reason: ReasonUnknownKey},
		{name: "jwk alg pin violated", token: sign(t, jwt.SigningMethodPS256, k.rsa2, "pinned", claims(nil), nil), reason: ReasonUnknownKey},

		{name: "alg none", token: sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "r1", claims(nil), nil), reason: ReasonAlgorithmNotAllowed},
		{name: "confusion: hs256 with rsa public key", token: sign(t, jwt.SigningMethodHS256, pubPEM, "r1", claims(nil), nil), reason: ReasonAlgorithmNotAllowed},
		{name: "confusion: hs256 with rsa der", token: sign(t, jwt.SigningMethodHS256, pubDER, "", claims(nil), nil), reason: ReasonAlgorithmNotAllowed},
		{name: "confusion: hs256 with published oct key", token: sign(t, jwt.SigningMethodHS256, octKey, "oct1", claims(nil), nil), reason: ReasonAlgorithmNotAllowed},
		{name: "rs256 with oct kid", token: sign(t, jwt.SigningMethodRS256, k.rsa, "oct1", claims(nil), nil), reason: ReasonAlgorithmNotAllowed},
		{name: "es256 naming rsa kid", token: sign(t, jwt.SigningMethodES256, k.ec, "r1", claims(nil), nil), reason: ReasonAlgorithmNotAllowed},
		{name: "es256 naming p-384 kid", token: sign(t, jwt.SigningMethodES256, k.ec, "p384", claims(nil), nil), reason: ReasonAlgorithmNotAllowed},
		{name: "rs384 not configured", token: sign(t, jwt.SigningMethodRS384, k.rsa, "r1", claims(nil), nil), reason: ReasonAlgorithmNotAllowed},
		{name: "unimplemented alg", token: rs(claims(nil), map[string]any{"alg": "XY999"}), reason: ReasonAlgorithmNotAllowed},

		{name: "wrong issuer", token: rs(claims(func(c jwt.MapClaims) { c["iss"] = "https://evil.test" }), nil), reason: ReasonWrongIssuer},
		{name: "missing issuer", token: rs(claims(func(c jwt.MapClaims) { delete(c, "iss") }), nil), reason: ReasonWrongIssuer},
		{name: "wrong audience", token: rs(claims(func(c jwt.MapClaims) { c["aud"] = "other" }), nil), reason: ReasonWrongAudience},
		{name: "aud array without ours", token: rs(claims(func(c jwt.MapClaims) { c["aud"] = []string{"a", "b"} }), nil), reason: ReasonWrongAudience},
		{name: "missing audience", token: rs(claims(func(c jwt.MapClaims) { delete(c, "aud") }), nil), reason: ReasonWrongAudience},
		{name: "expired", token: rs(claims(func(c jwt.MapClaims) { c["exp"] = testNow.Add(-time.Hour).Unix() }), nil), reason: ReasonExpired},
		{name: "not yet valid", token: rs(claims(func(c jwt.MapClaims) { c["nbf"] = testNow.Add(time.Hour).Unix() }), nil), reason: ReasonNotYetValid},
		{name: "missing exp", token: rs(claims(func(c jwt.MapClaims) { delete(c, "exp") }), nil), reason: ReasonMissingExp},
		{name: "exp zero is not absent", token: rs(claims(func(c jwt.MapClaims) { c["exp"] = 0 }), nil), reason: ReasonExpired},
	}
	before := srv.hits.Load()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := v.Verify(tt.token, testNow)
			wantReason(t, err, tt.reason)
			if tt.reason == "" && c.Subject() != "device-42" {
				t.Fatalf("Subject() = %q", c.Subject())
			}
			if tt.reason != "" && c != nil {
				t.Fatalf("claims %v returned with error", c)
			}
		})
	}
	if got := srv.hits.Load() - before; got != 0 {
		t.Fatalf("verification fetched the JWKS %d times, want 0 (refresh budget used up)", got)
	}
}

// errOnly drops the claims so that a Verify call can be passed to wantReason.
func errOnly(_ Claims, err error) error { return err }

func TestVerifyHS256(t *testing.T) {
	k := keys(t)
	v := hmacVerifier(t, nil)
	noExp := hmacVerifier(t, func(c *JWTConfig) { c.AllowNoExp = true })
	noAud := hmacVerifier(t, func(c *JWTConfig) { c.Audiences = nil })
	hs := func(c jwt.MapClaims) string { return sign(t, jwt.SigningMethodHS256, k.hmac, "", c, nil) }
	tests := []struct {
		name   string
		v      *Verifier
		token  string
		reason string
	}{
		{name: "valid", v: v, token: hs(claims(nil))},
		{name: "kid is ignored", v: v, token: sign(t, jwt.SigningMethodHS256, k.hmac, "whatever", claims(nil), nil)},
		{name: "wrong secret", v: v, token: sign(t, jwt.SigningMethodHS256, []byte("another secret, also 32 bytes!!!"), "", claims(nil), nil), reason: ReasonBadSignature},
		{name: "hs512 not configured", v: v, token: sign(t, jwt.SigningMethodHS512, k.hmac, "", claims(nil), nil), reason: ReasonAlgorithmNotAllowed},
		{name: "rs256 in hmac mode", v: v, token: sign(t, jwt.SigningMethodRS256, k.rsa, "", claims(nil), nil), reason: ReasonAlgorithmNotAllowed},
		{name: "alg none", v: v, token: sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", claims(nil), nil), reason: ReasonAlgorithmNotAllowed},
		{name: "missing exp", v: v, token: hs(claims(func(c jwt.MapClaims) { delete(c, "exp") })), reason: ReasonMissingExp},
		{name: "missing exp allowed", v: noExp, token: hs(claims(func(c jwt.MapClaims) { delete(c, "exp") }))},
		{name: "allowed but expired", v: noExp, token: hs(claims(func(c jwt.MapClaims) { c["exp"] = 0 })), reason: ReasonExpired},
		{name: "no audience configured", v: noAud, token: hs(claims(func(c jwt.MapClaims) { delete(c, "aud") }))},
		{name: "no audience configured, any aud", v: noAud, token: hs(claims(func(c jwt.MapClaims) { c["aud"] = "x" }))},
		{name: "wrong issuer", v: v, token: hs(claims(func(c jwt.MapClaims) { c["iss"] = testIssuer + "/" })), reason: ReasonWrongIssuer},
		{name: "issuer not a string", v: v, token: hs(claims(func(c jwt.MapClaims) { c["iss"] = 1 })), reason: ReasonWrongIssuer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.v.Verify(tt.token, testNow)
			wantReason(t, err, tt.reason)
		})
	}
}

// TestClockSkew pins the boundaries: a token is valid while
// now < exp+skew and now >= nbf-skew.
func TestClockSkew(t *testing.T) {
	k := keys(t)
	def := hmacVerifier(t, nil)
	oneSec := hmacVerifier(t, func(c *JWTConfig) { c.ClockSkew = time.Second })
	maxSkew := hmacVerifier(t, func(c *JWTConfig) { c.ClockSkew = MaxClockSkew })
	at := func(name string, d time.Duration) string {
		return sign(t, jwt.SigningMethodHS256, k.hmac, "", claims(func(c jwt.MapClaims) {
			c[name] = float64(testNow.Add(d).UnixMilli()) / 1000
		}), nil)
	}
	tests := []struct {
		name   string
		v      *Verifier
		token  string
		reason string
	}{
		{name: "default: expired 29s ago", v: def, token: at("exp", -29*time.Second)},
		{name: "default: expired 30s ago", v: def, token: at("exp", -30*time.Second), reason: ReasonExpired},
		{name: "default: nbf in 30s", v: def, token: at("nbf", 30*time.Second)},
		{name: "default: nbf in 30.5s", v: def, token: at("nbf", 30500*time.Millisecond), reason: ReasonNotYetValid},
		{name: "1s: expired 0.5s ago", v: oneSec, token: at("exp", -500*time.Millisecond)},
		{name: "1s: expired 2s ago", v: oneSec, token: at("exp", -2*time.Second), reason: ReasonExpired},
		{name: "1s: nbf in 2s", v: oneSec, token: at("nbf", 2*time.Second), reason: ReasonNotYetValid},
		{name: "max: expired 4m59s ago", v: maxSkew, token: at("exp", -(MaxClockSkew - time.Second))},
		{name: "max: expired 5m ago", v: maxSkew, token: at("exp", -MaxClockSkew), reason: ReasonExpired},
		{name: "max: nbf in 5m", v: maxSkew, token: at("nbf", MaxClockSkew)},
		{name: "max: nbf in 5m1s", v: maxSkew, token: at("nbf", MaxClockSkew+time.Second), reason: ReasonNotYetValid},
		{name: "far future exp", v: def, token: sign(t, jwt.SigningMethodHS256, k.hmac, "", claims(func(c jwt.MapClaims) { c["exp"] = 1e300 }), nil)},
		{name: "far past nbf", v: def, token: sign(t, jwt.SigningMethodHS256, k.hmac, "", claims(func(c jwt.MapClaims) { c["nbf"] = -1e300 }), nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.v.Verify(tt.token, testNow)
			wantReason(t, err, tt.reason)
		})
	}
}

func TestClaims(t *testing.T) {
	c := Claims{"sub": "dev-1", "n": 3.0, "s": "x"}
	tests := []struct {
		name, got, want string
	}{
		{name: "subject", got: c.Subject(), want: "dev-1"},
		{name: "string", got: c.String("s"), want: "x"},
		{name: "not a string", got: c.String("n"), want: ""},
		{name: "absent", got: c.String("missing"), want: ""},
		{name: "nil claims", got: Claims(nil).Subject(), want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Fatalf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
}

func TestErrorStrings(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{name: "reason only", err: &Error{Reason: ReasonExpired}, want: "credential: expired"},
		{name: "with detail", err: &Error{Reason: ReasonMalformed, Detail: "x"}, want: "credential: malformed: x"},
		{name: "config", err: &ConfigError{Field: "Issuer", Problem: "is required"}, want: "credential: JWTConfig.Issuer: is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Fatalf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestHMACSecretCopied checks that the Verifier does not alias the caller's
// secret: the config snapshot may be reused or zeroed after construction.
func TestHMACSecretCopied(t *testing.T) {
	secret := []byte(string(keys(t).hmac))
	v, err := NewVerifier(context.Background(), JWTConfig{Issuer: testIssuer, HMACSecret: secret}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok := sign(t, jwt.SigningMethodHS256, keys(t).hmac, "", claims(nil), nil)
	clear(secret)
	wantReason(t, errOnly(v.Verify(tok, testNow)), "")
}
