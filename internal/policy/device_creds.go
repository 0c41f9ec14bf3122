package policy

import (
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fleetgate/fleetgate/internal/identity/devtoken"
	"github.com/fleetgate/fleetgate/internal/identity/pki"
	"github.com/fleetgate/fleetgate/internal/model"
)

// Device credentials other than certificates: DTLS pre-shared keys and
// device tokens. They are indexed with the certificates in DeviceIndex
// (one principal per credential, prebuilt, shared read-only) and follow
// the same rule: the index is rebuilt on every control-plane change, so a
// revocation or a status change reaches the data plane with the next
// snapshot, and sessions are rechecked then (SessionValid).

// Credential name prefixes of device principals; PrincipalValid reads them
// back to find the credential a session was admitted with.
const (
	credDeviceToken = "device_token:"
	credDevicePSK   = "device_psk:"
)

// SecretBytes is key material held by a snapshot (decrypted DTLS PSKs).
// It never prints, logs or serialises its content, whatever the verb or
// encoder: a snapshot dumped for debugging must not leak keys.
type SecretBytes []byte

func (SecretBytes) String() string                { return "[redacted]" }
func (SecretBytes) GoString() string              { return "[redacted]" }
func (SecretBytes) LogValue() slog.Value          { return slog.StringValue("[redacted]") }
func (SecretBytes) MarshalJSON() ([]byte, error)  { return []byte(`"[redacted]"`), nil }
func (SecretBytes) MarshalText() ([]byte, error)  { return []byte("[redacted]"), nil }
func (SecretBytes) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte("[redacted]")) }

// PSKInput is one DTLS pre-shared key, decrypted by the snapshot builder
// (which holds the KEK); its revocation is in the credential of the same
// ID in DeviceInput.Credentials.
type PSKInput struct {
	ID, Tenant, Device, Identity string
	Key                          SecretBytes
}

// TokenKeyInput is the public half of a tenant's device-token signing key.
type TokenKeyInput struct {
	Tenant, KID string
	Public      ed25519.PublicKey
}

type deviceCreds struct {
	psks   map[string]*credEntry // PSK identity -> entry
	keys   map[string]TokenKeyInput
	tokens map[string]*credEntry // tenant "/" jti -> entry
	byCred map[string]*credEntry // tenant "/" principal.Credential -> entry
	// verified caches tokens whose signature checked out (token ->
	// *verifiedToken): an Ed25519 verification costs ~1,000 times a map
	// lookup, and a device sends the same token for up to 24 h. The cache
	// lives and dies with the index, so every control-plane change (a
	// revocation, a status change) starts it empty; hits still check the
	// token's dates and its credential.
	verified     sync.Map
	verifiedSize atomic.Int64
}

// maxVerified bounds the verified-token cache per snapshot (~500 bytes an
// entry); past it tokens are verified every time, which is only slower.
const maxVerified = 100_000

type verifiedToken struct {
	entry    *credEntry
	nbf, exp time.Time // with devtoken.ClockSkew applied
}

type credEntry struct {
	principal *Principal
	live      bool // device active and credential not revoked
	notAfter  *time.Time
	key       SecretBytes // PSKs only
	status    model.DeviceStatus
}

func (e *credEntry) valid(now time.Time) bool {
	return e != nil && e.live && (e.notAfter == nil || now.Before(*e.notAfter))
}

// buildDeviceCreds indexes the token and PSK credentials of in. A PSK
// without its key (no KEK, or a key the builder could not open) and a
// credential whose device is gone are left out: they authenticate nobody.
func buildDeviceCreds(in DeviceInput, devices map[pki.DeviceIdentity]*model.Device) *deviceCreds {
	x := &deviceCreds{psks: map[string]*credEntry{}, keys: map[string]TokenKeyInput{}, tokens: map[string]*credEntry{}, byCred: map[string]*credEntry{}}
	for _, k := range in.TokenKeys {
		x.keys[k.KID] = k
	}
	psks := make(map[string]*PSKInput, len(in.PSKs))
	for i := range in.PSKs {
		psks[in.PSKs[i].Tenant+"/"+in.PSKs[i].ID] = &in.PSKs[i]
	}
	for i := range in.Credentials {
		c := &in.Credentials[i]
		if c.Kind != model.CredToken && c.Kind != model.CredPSK {
			continue
		}
		d := devices[pki.DeviceIdentity{Tenant: c.TenantID, DeviceID: c.DeviceID}]
		if d == nil {
			continue
		}
		e := &credEntry{live: d.Status == model.DeviceActive && c.RevokedAt == nil, notAfter: c.NotAfter, status: d.Status}
		switch c.Kind {
		case model.CredToken:
			e.principal = credPrincipal(d, credDeviceToken+c.ID)
			x.tokens[c.TenantID+"/"+c.ID] = e
		case model.CredPSK:
			in := psks[c.TenantID+"/"+c.ID]
			if in == nil || len(in.Key) == 0 {
				continue
			}
			e.principal, e.key = credPrincipal(d, credDevicePSK+c.ID), in.Key
			x.psks[in.Identity] = e
		}
		x.byCred[c.TenantID+"/"+e.principal.Credential] = e
	}
	return x
}

func credPrincipal(d *model.Device, cred string) *Principal {
	p := devicePrincipal(d)
	p.Credential = cred
	return p
}

// PSK returns the key and the device principal of a DTLS PSK identity
// (RFC 4279 psk_identity), for the DTLS listener's key callback. It
// reports false for an unknown identity, a revoked PSK and a device that
// is not active. The key is a copy the caller may clear.
func (x *DeviceIndex) PSK(identity string, now time.Time) ([]byte, *Principal, bool) {
	if x == nil || x.creds == nil {
		return nil, nil, false
	}
	e := x.creds.psks[identity]
	if !e.valid(now) {
		return nil, nil, false
	}
	return slices.Clone([]byte(e.key)), e.principal, true
}

// PSK is DeviceIndex.PSK on this snapshot's devices: the seam for the
// CoAP/DTLS adapter.
func (s *Snapshot) PSK(identity string, now time.Time) ([]byte, *Principal, bool) {
	return s.devices.PSK(identity, now)
}

// Token verifies a device token and returns the principal of its device.
// ours reports whether the token is a device token at all (it parses and
// names a device-token signing key), so that an operation accepting both
// device tokens and third-party JWTs tries only the right verifier. A
// token is refused when its signature, issuer, tenant, exp or nbf (with
// devtoken.ClockSkew) is wrong, when its jti is not a recorded live
// credential of its device, or when the device is not active.
func (x *DeviceIndex) Token(token string, now time.Time) (p *Principal, ours bool) {
	if x == nil || x.creds == nil || !devtoken.LooksLikeToken(token) {
		return nil, false
	}
	if v, ok := x.creds.verified.Load(token); ok {
		vt := v.(*verifiedToken)
		if !now.Before(vt.exp) || now.Before(vt.nbf) || !vt.entry.valid(now) {
			return nil, true
		}
		return vt.entry.principal, true
	}
	pt, err := devtoken.Parse(token)
	if err != nil {
		return nil, false
	}
	k, ok := x.creds.keys[pt.KID]
	if !ok {
		return nil, false
	}
	if pt.Verify(k.Public, now) != nil || pt.Claims.Tenant != k.Tenant {
		return nil, true
	}
	e := x.creds.tokens[k.Tenant+"/"+pt.Claims.ID]
	if !e.valid(now) || e.principal.Device != pt.Claims.Subject {
		return nil, true
	}
	if x.creds.verifiedSize.Load() < maxVerified {
		x.creds.verifiedSize.Add(1)
		x.creds.verified.Store(token, &verifiedToken{entry: e,
			nbf: time.Unix(pt.Claims.NotBefore, 0).Add(-devtoken.ClockSkew), exp: time.Unix(pt.Claims.Expiry, 0).Add(devtoken.ClockSkew)})
	}
	return e.principal, true
}

// tokenRefusal classifies a device token this control plane signed and
// recorded whose credential is revoked or whose device is not active. The
// signature is checked (anyone can make up a jti); the dates are not: a
// revoked token presented after its expiry is still a device that kept it.
func (x *DeviceIndex) tokenRefusal(token string) (Refusal, bool) {
	if x == nil || x.creds == nil || !devtoken.LooksLikeToken(token) {
		return Refusal{}, false
	}
	pt, err := devtoken.Parse(token)
	if err != nil {
		return Refusal{}, false
	}
	k, ok := x.creds.keys[pt.KID]
	if !ok || pt.Claims.Tenant != k.Tenant {
		return Refusal{}, false
	}
	// Verify at an instant inside the token's own validity: only the
	// signature and the required claims decide here.
	if pt.Verify(k.Public, time.Unix(pt.Claims.Expiry, 0).Add(-time.Second)) != nil {
		return Refusal{}, false
	}
	e := x.creds.tokens[k.Tenant+"/"+pt.Claims.ID]
	if e == nil || e.live || e.principal.Device != pt.Claims.Subject {
		return Refusal{}, false
	}
	r := Refusal{Tenant: k.Tenant, Subject: "device:" + e.principal.Device, Credential: e.principal.Credential}
	if e.status == model.DeviceActive {
		r.Kind = RefusedRevokedToken
	} else {
		r.Kind, r.Status = RefusedInactiveDevice, string(e.status)
	}
	return r, true
}

// sessionActive reports whether a device principal is still backed by the
// credential it was admitted with: its token or PSK when it came with one,
// otherwise a live certificate of the device.
func (x *DeviceIndex) sessionActive(p *Principal, now time.Time) bool {
	if x == nil {
		return false
	}
	if strings.HasPrefix(p.Credential, credDeviceToken) || strings.HasPrefix(p.Credential, credDevicePSK) {
		if x.creds == nil {
			return false
		}
		e := x.creds.byCred[p.Tenant+"/"+p.Credential]
		return e.valid(now) && e.principal.ID == p.ID
	}
	return x.Active(p.Tenant, p.ID)
}
