package credential

import (
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// FuzzVerify feeds arbitrary strings to an HMAC and a JWKS verifier: Verify
// must never panic, must fail with a *Error carrying a known reason, and must
// never return claims together with an error. The seeds are valid tokens and
// near misses, so the fuzzer starts from inputs that reach claim checks.
func FuzzVerify(f *testing.F) {
	k := keys(f)
	srv := newJWKSServer(f, jwk(f, "r1", &k.rsa.PublicKey), jwk(f, "e1", &k.ec.PublicKey), jwk(f, "d1", k.ed.Public()))
	jv := jwksVerifier(f, srv, testTiming, nil)
	hv := hmacVerifier(f, nil)

	c := claims(nil)
	for _, seed := range []string{
		sign(f, jwt.SigningMethodHS256, k.hmac, "", c, nil),
		sign(f, jwt.SigningMethodRS256, k.rsa, "r1", c, nil),
		sign(f, jwt.SigningMethodES256, k.ec, "e1", c, nil),
		sign(f, jwt.SigningMethodEdDSA, k.ed, "d1", c, nil),
		sign(f, jwt.SigningMethodES256, k.ec, "", c, map[string]any{"crit": []string{"b64"}}),
		sign(f, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", c, nil),
		sign(f, jwt.SigningMethodHS256, k.hmac, "", claims(func(c jwt.MapClaims) { c["exp"] = "x"; c["aud"] = []any{1, nil} }), nil),
		"", ".", "..", "a.b.c", "e30.e30.", strings.Repeat("A", MaxTokenBytes+1),
	} {
		f.Add(seed)
	}
	known := map[string]bool{
		ReasonMalformed: true, ReasonBadSignature: true, ReasonUnknownKey: true, ReasonExpired: true,
		ReasonNotYetValid: true, ReasonWrongIssuer: true, ReasonWrongAudience: true,
		ReasonAlgorithmNotAllowed: true, ReasonMissingExp: true,
	}
	f.Fuzz(func(t *testing.T, token string) {
		for _, v := range []*Verifier{hv, jv} {
			claims, err := v.Verify(token, testNow)
			if err == nil {
				if claims == nil {
					t.Fatal("nil claims without error")
				}
				continue
			}
			e, ok := err.(*Error)
			if !ok || e == nil {
				t.Fatalf("error %v is %T, want *Error", err, err)
			}
			if !known[e.Reason] {
				t.Fatalf("unknown reason %q", e.Reason)
			}
			if claims != nil {
				t.Fatalf("claims returned with error %v", err)
			}
		}
	})
}
