package credential

import (
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// The verification benchmarks measure the hot path: a cached key, a valid
// token, all claim checks. RunParallel shows contention on the key cache.

func BenchmarkVerifyES256(b *testing.B) {
	k := keys(b)
	srv := newJWKSServer(b, jwk(b, "e1", &k.ec.PublicKey))
	v := jwksVerifier(b, srv, testTiming, func(c *JWTConfig) { c.Audiences = []string{"other", testAudience} })
	tok := sign(b, jwt.SigningMethodES256, k.ec, "e1", claims(nil), nil)
	if _, err := v.Verify(tok, testNow); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Verify(tok, testNow); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkVerifyHS256(b *testing.B) {
	k := keys(b)
	v := hmacVerifier(b, nil)
	tok := sign(b, jwt.SigningMethodHS256, k.hmac, "", claims(nil), nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Verify(tok, testNow); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkHashAPIKey(b *testing.B) {
	secret, _, want := NewAPIKey()
	b.ReportAllocs()
	var got [32]byte
	for b.Loop() {
		got = HashAPIKey(secret)
	}
	if got != want {
		b.Fatal("hash mismatch")
	}
}
