package credential

import (
	"crypto/sha256"
	"strings"
	"testing"
)

func TestNewAPIKey(t *testing.T) {
	if APIKeyLen != 47 {
		t.Fatalf("APIKeyLen = %d, want 47", APIKeyLen)
	}
	seen := map[[32]byte]bool{}
	for range 100 {
		secret, prefix, hash := NewAPIKey()
		if len(secret) != APIKeyLen {
			t.Fatalf("len(%q) = %d, want 47", secret, len(secret))
		}
		if !strings.HasPrefix(secret, "fgk_") || prefix != secret[:12] {
			t.Fatalf("secret %q, prefix %q", secret, prefix)
		}
		if !LooksLikeAPIKey(secret) {
			t.Fatalf("LooksLikeAPIKey(%q) = false for a generated key", secret)
		}
		if hash != sha256.Sum256([]byte(secret)) || hash != HashAPIKey(secret) {
			t.Fatalf("hash of %q is not its SHA-256", secret)
		}
		if seen[hash] {
			t.Fatalf("duplicate key %q", secret)
		}
		seen[hash] = true
	}
}

func TestLooksLikeAPIKey(t *testing.T) {
	body := strings.Repeat("A", 43)
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{name: "valid", in: "fgk_" + body, want: true},
		{name: "full alphabet", in: "fgk_" + "abcxyzABCXYZ0123456789-_" + strings.Repeat("Q", 19), want: true},
		{name: "empty", in: ""},
		{name: "prefix only", in: "fgk_"},
		{name: "one short", in: "fgk_" + body[:42]},
		{name: "one long", in: "fgk_" + body + "A"},
		{name: "wrong prefix", in: "fgx_" + body},
		{name: "upper prefix", in: "FGK_" + body},
		{name: "std base64 plus", in: "fgk_" + body[:42] + "+"},
		{name: "std base64 slash", in: "fgk_/" + body[:42]},
		{name: "padding", in: "fgk_" + body[:42] + "="},
		{name: "space", in: "fgk_" + body[:21] + " " + body[:21]},
		{name: "non-ascii", in: "fgk_" + body[:41] + "é"},
		{name: "nul", in: "fgk_" + body[:42] + "\x00"},
		{name: "jwt", in: "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := LooksLikeAPIKey(tt.in); got != tt.want {
				t.Fatalf("LooksLikeAPIKey(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

// TestHashAPIKey checks both code paths against crypto/sha256 directly.
func TestHashAPIKey(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{name: "empty", in: ""},
		{name: "key", in: "fgk_" + strings.Repeat("x", 43)},
		{name: "64 bytes", in: strings.Repeat("a", 64)},
		{name: "65 bytes", in: strings.Repeat("a", 65)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if HashAPIKey(tt.in) != sha256.Sum256([]byte(tt.in)) {
				t.Fatal("HashAPIKey differs from sha256.Sum256")
			}
		})
	}
	key := "fgk_" + strings.Repeat("x", 43)
	if n := testing.AllocsPerRun(100, func() { HashAPIKey(key) }); n != 0 {
		t.Fatalf("HashAPIKey allocates %v times", n)
	}
}
