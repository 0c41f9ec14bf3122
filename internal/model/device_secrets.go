package model

import "time"

// DevicePSK is a DTLS pre-shared key of a device as stored. Each one has a
// DeviceCredential of kind CredPSK with the same ID, which carries its
// revocation; this row carries what only PSKs have: the identity a device
// presents in the handshake and the key, sealed with the device KEK.
//
// The key is encrypted, not hashed, on purpose: the DTLS server derives the
// session keys from the raw PSK (RFC 4279 §2), so it must be able to read
// it back. SealedKey never leaves the control plane in an API answer.
type DevicePSK struct {
	ID        string    `json:"id"`
	TenantID  string    `json:"tenant"`
	DeviceID  string    `json:"device"`
	Identity  string    `json:"identity"`
	SealedKey []byte    `json:"-"`
	CreatedAt time.Time `json:"created_at"`
}

// DeviceTokenKey is a tenant's device-token signing key as stored: the
// public key (what the data plane verifies with and the JWKS publishes)
// and the private key sealed with the device KEK. A tenant may have more
// than one; the newest signs, all verify.
type DeviceTokenKey struct {
	TenantID  string    `json:"tenant"`
	KID       string    `json:"kid"`
	Alg       string    `json:"alg"` // "EdDSA"
	PublicKey []byte    `json:"-"`   // raw Ed25519 public key, 32 bytes
	SealedKey []byte    `json:"-"`
	CreatedAt time.Time `json:"created_at"`
}
