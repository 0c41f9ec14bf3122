package pki

import (
	"crypto/rand"
	"errors"
	"fmt"
)

// Purposes of sealed secrets (the purpose argument of SealSecret).
const (
	PurposePSK      = "dtls-psk"
	PurposeTokenKey = "device-token-key"
)

// SealSecret encrypts key material other than a CA key (a DTLS pre-shared
// key, a device-token signing key) with the key-encryption key, in the
// layout SealKey uses:
//
//	version (1 byte, 0x01) | nonce (12 bytes) | AES-256-GCM(plain)
//
// The additional data binds the blob to its purpose and its tenant, so a
// sealed PSK cannot be replayed as a signing key, nor moved to another
// tenant's row. purpose and tenant must not contain NUL (they never do:
// purposes are constants and tenant ids are names).
func SealSecret(kek []byte, purpose, tenant string, plain []byte) ([]byte, error) {
	aead, err := newAEAD(kek)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1+gcmNonceSize, 1+gcmNonceSize+len(plain)+aead.Overhead())
	out[0] = sealVersion1
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("pki: nonce: %w", err)
	}
	return aead.Seal(out, out[1:1+gcmNonceSize], plain, secretAD(purpose, tenant)), nil
}

// ErrSecretUnseal: a sealed secret could not be opened (wrong KEK, another
// purpose or tenant, or tampering). Like ErrKeyUnseal it says no more,
// since the cases are indistinguishable to AES-GCM anyway.
var ErrSecretUnseal = errors.New("pki: sealed secret cannot be opened with this key-encryption key")

// OpenSecret reverses SealSecret. The caller should clear the result once
// it is no longer needed.
func OpenSecret(kek []byte, purpose, tenant string, sealed []byte) ([]byte, error) {
	aead, err := newAEAD(kek)
	if err != nil {
		return nil, err
	}
	if len(sealed) < 1+gcmNonceSize+aead.Overhead() || sealed[0] != sealVersion1 {
		return nil, ErrSecretUnseal
	}
	plain, err := aead.Open(nil, sealed[1:1+gcmNonceSize], sealed[1+gcmNonceSize:], secretAD(purpose, tenant))
	if err != nil {
		return nil, ErrSecretUnseal
	}
	return plain, nil
}

// secretAD differs from the CA key's version||tenant by its "secret\x00"
// prefix: tenant ids contain no NUL, so the two can never coincide.
func secretAD(purpose, tenant string) []byte {
	ad := make([]byte, 0, 1+len("secret")+len(purpose)+len(tenant)+2)
	ad = append(ad, sealVersion1)
	ad = append(ad, "secret\x00"...)
	ad = append(ad, purpose...)
	ad = append(ad, 0)
	return append(ad, tenant...)
}
