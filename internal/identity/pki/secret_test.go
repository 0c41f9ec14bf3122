package pki

import (
	"bytes"
	"errors"
	"testing"
)

func TestSealSecret(t *testing.T) {
	kek := bytes.Repeat([]byte{3}, KEKSize)
	other := bytes.Repeat([]byte{4}, KEKSize)
	plain := []byte("0123456789abcdef0123456789abcdef")
	sealed, err := SealSecret(kek, "psk", "acme", plain)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, plain) {
		t.Fatal("sealed blob contains the plaintext")
	}
	if got, err := OpenSecret(kek, "psk", "acme", sealed); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("open: %q %v", got, err)
	}
	flipped := bytes.Clone(sealed)
	flipped[len(flipped)-1] ^= 1
	tests := []struct {
		name            string
		kek             []byte
		purpose, tenant string
		blob            []byte
	}{
		{"wrong kek", other, "psk", "acme", sealed},
		{"other purpose", kek, "token-key", "acme", sealed},
		{"other tenant", kek, "psk", "acme2", sealed},
		{"tampered", kek, "psk", "acme", flipped},
		{"truncated", kek, "psk", "acme", sealed[:10]},
		{"empty", kek, "psk", "acme", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := OpenSecret(tc.kek, tc.purpose, tc.tenant, tc.blob); !errors.Is(err, ErrSecretUnseal) {
				t.Fatalf("got %v, want ErrSecretUnseal", err)
			}
		})
	}
	if _, err := SealSecret(kek[:16], "psk", "acme", plain); err == nil {
		t.Fatal("short KEK accepted")
	}
}
