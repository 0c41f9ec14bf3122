package model

import "time"

// ClaimKind names the credential a claim is presented with.
type ClaimKind string

const (
	// ClaimToken: a random secret ("fgc_..."), shown once, stored as its
	// SHA-256, sent as "Authorization: Bearer".
	ClaimToken ClaimKind = "token"
	// ClaimCertificate: a client certificate issued by the tenant CA with
	// a claim identity (urn:fleetgate:<tenant>:claim:<id>), presented as
	// the TLS client certificate.
	ClaimCertificate ClaimKind = "certificate"
)

// Claim is a fleet-provisioning credential shared by a production batch.
// It may only enroll new devices, of the allowed models, at most
// MaxDevices times, until ExpiresAt, and only while not revoked; it never
// authenticates as a principal anywhere else. Used counts successful
// enrollments and only grows.
type Claim struct {
	ID           string     `json:"id"`
	TenantID     string     `json:"tenant"`
	Name         string     `json:"name"`
	Models       []string   `json:"models"`
	MaxDevices   int        `json:"max_devices"`
	Used         int        `json:"used"`
	ExpiresAt    time.Time  `json:"expires_at"`
	Kind         ClaimKind  `json:"kind"`
	Hash         []byte     `json:"-"`                     // SHA-256 of the token secret (kind token)
	Fingerprint  string     `json:"fingerprint,omitempty"` // SHA-256 of the claim certificate DER (kind certificate)
	Serial       string     `json:"serial,omitempty"`      // claim certificate serial, lowercase hex
	RevokedAt    *time.Time `json:"revoked_at,omitempty"`
	RevokeReason string     `json:"revoke_reason,omitempty"`
	CreatedAt    time.Time  `json:"created_at"`
	UpdatedAt    time.Time  `json:"updated_at"`
}

// Usable reports why the claim may not enroll one more device at now:
// "" when it may, else "claim-revoked", "claim-expired" or
// "claim-exhausted" (checked in that order: a revoked claim is reported
// as revoked even when it has also expired).
func (c *Claim) Usable(now time.Time) string {
	switch {
	case c.RevokedAt != nil:
		return "claim-revoked"
	case !now.Before(c.ExpiresAt):
		return "claim-expired"
	case c.Used >= c.MaxDevices:
		return "claim-exhausted"
	}
	return ""
}

// AllowsModel reports whether the claim may enroll a device of model m.
func (c *Claim) AllowsModel(m string) bool {
	for _, x := range c.Models {
		if x == m {
			return true
		}
	}
	return false
}

// ExternalCA is a certificate authority the tenant runs itself (a factory
// CA, a cloud IoT CA) whose client certificates the data plane accepts for
// registered devices. Source and Pattern say where the device id is read:
// the subject common name ("cn"), or the one URI ("san-uri") or DNS
// ("san-dns") subjectAltName that matches Pattern, a template with a single
// "{device}" placeholder.
type ExternalCA struct {
	ID          string    `json:"id"`
	TenantID    string    `json:"tenant"`
	Name        string    `json:"name"`
	CertPEM     string    `json:"certificate"`
	Fingerprint string    `json:"fingerprint"`
	Subject     string    `json:"subject"`
	NotAfter    time.Time `json:"not_after"`
	Source      string    `json:"source"`
	Pattern     string    `json:"pattern"`
	CreatedAt   time.Time `json:"created_at"`
}
