package model

import (
	"strings"
	"time"
)

// DeviceStatus is where a device is in its life. Only active devices
// authenticate on the data plane; the others are kept in the registry so
// that their history, ownership and credentials stay accountable.
type DeviceStatus string

const (
	DevicePending        DeviceStatus = "pending"        // registered, not enrolled yet
	DeviceActive         DeviceStatus = "active"         // enrolled, may connect
	DeviceSuspended      DeviceStatus = "suspended"      // temporarily barred (lost, unpaid, investigated)
	DeviceQuarantined    DeviceStatus = "quarantined"    // barred because it is suspected compromised
	DeviceDecommissioned DeviceStatus = "decommissioned" // retired for good; terminal
)

// AllDeviceStatuses lists the statuses in a stable order.
var AllDeviceStatuses = []DeviceStatus{DevicePending, DeviceActive, DeviceSuspended, DeviceQuarantined, DeviceDecommissioned}

// Valid reports whether s is a known status.
func (s DeviceStatus) Valid() bool {
	for _, k := range AllDeviceStatuses {
		if s == k {
			return true
		}
	}
	return false
}

// Device is one registered device of a tenant. ID is chosen by the tenant
// (a serial-derived name, a MAC address) and is what certificates carry, so
// it follows the certificate rules of ValidDeviceID and never changes.
type Device struct {
	ID         string            `json:"id"`
	TenantID   string            `json:"tenant"`
	Model      string            `json:"model,omitempty"`
	Serial     string            `json:"serial,omitempty"`
	Owners     []string          `json:"owners,omitempty"` // subjects, e.g. "user:alice"
	Attributes map[string]string `json:"attributes,omitempty"`
	Status     DeviceStatus      `json:"status"`
	Firmware   string            `json:"firmware,omitempty"` // last reported version
	FirstSeen  *time.Time        `json:"first_seen,omitempty"`
	LastSeen   *time.Time        `json:"last_seen,omitempty"`
	CreatedAt  time.Time         `json:"created_at"`
	UpdatedAt  time.Time         `json:"updated_at"`
}

// ValidDeviceID reports whether s can name a device: 1-64 characters of
// [A-Za-z0-9._@:-]. The bound and the alphabet are those of the device
// certificate's common name and URN SAN (see identity/pki), so every
// registered id can be enrolled.
func ValidDeviceID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("._@:-", c) >= 0) {
			return false
		}
	}
	return true
}

// CredentialKind names how a device authenticates.
type CredentialKind string

const (
	CredCertificate CredentialKind = "certificate" // X.509 client certificate from the tenant CA
	CredToken       CredentialKind = "token"       // short-lived device token
	CredPSK         CredentialKind = "psk"         // DTLS pre-shared key
)

// DeviceCredential is one credential issued to a device. Certificates are
// identified by the SHA-256 fingerprint of their DER (what the data plane
// looks up) and by their serial (what CRLs and OCSP name). Credentials are
// never deleted with their device: a revoked certificate must stay on the
// CRL until it expires.
type DeviceCredential struct {
	ID           string         `json:"id"`
	TenantID     string         `json:"tenant"`
	DeviceID     string         `json:"device"`
	Kind         CredentialKind `json:"kind"`
	Fingerprint  string         `json:"fingerprint,omitempty"` // lowercase hex SHA-256 of the DER
	Serial       string         `json:"serial,omitempty"`      // lowercase hex
	NotAfter     *time.Time     `json:"not_after,omitempty"`
	RevokedAt    *time.Time     `json:"revoked_at,omitempty"`
	RevokeReason string         `json:"revoke_reason,omitempty"`
	CreatedAt    time.Time      `json:"created_at"`
}

// Live reports whether the credential may still authenticate at now.
func (c *DeviceCredential) Live(now time.Time) bool {
	return c.RevokedAt == nil && (c.NotAfter == nil || now.Before(*c.NotAfter))
}

// TenantCA is a tenant's device certificate authority as stored: the public
// certificate and the private key sealed with the key-encryption key (never
// in clear).
type TenantCA struct {
	TenantID  string    `json:"tenant"`
	KeyType   string    `json:"key_type"`
	CertPEM   []byte    `json:"-"`
	SealedKey []byte    `json:"-"`
	CreatedAt time.Time `json:"created_at"`
}

// EnrollmentToken lets one pre-registered device obtain its first
// certificate, once. Only the SHA-256 of the secret is stored.
type EnrollmentToken struct {
	ID        string     `json:"id"`
	TenantID  string     `json:"tenant"`
	DeviceID  string     `json:"device"`
	Hash      []byte     `json:"-"`
	ExpiresAt time.Time  `json:"expires_at"`
	UsedAt    *time.Time `json:"used_at,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
}
