package snapshot

import (
	"crypto/ed25519"
	"slices"

	"github.com/fleetgate/fleetgate/internal/identity/pki"
	"github.com/fleetgate/fleetgate/internal/policy"
	"github.com/fleetgate/fleetgate/internal/store"
)

// SetKEK gives the builder the device key-encryption key, so that DTLS
// pre-shared keys can be opened into the snapshot (the DTLS handshake
// needs them in clear). Without it PSKs are left out: they authenticate
// nobody, which is the safe failure. Call it before the first Build.
func (b *Builder) SetKEK(kek []byte) { b.kek = slices.Clone(kek) }

// readDeviceSecrets adds the device-token verification keys (public, no
// KEK needed) and the opened PSKs to in. A PSK that does not open (KEK
// changed, row tampered with) is left out with a warning naming its id,
// never its bytes.
func (b *Builder) readDeviceSecrets(tx store.Tx, in *policy.DeviceInput) error {
	keys, err := tx.ListDeviceTokenKeys("")
	if err != nil {
		return err
	}
	for _, k := range keys {
		if k.Alg == "EdDSA" && len(k.PublicKey) == ed25519.PublicKeySize {
			in.TokenKeys = append(in.TokenKeys, policy.TokenKeyInput{Tenant: k.TenantID, KID: k.KID, Public: ed25519.PublicKey(k.PublicKey)})
		}
	}
	psks, err := tx.ListDevicePSKs("", "", store.Page{Limit: -1})
	if err != nil {
		return err
	}
	if len(psks) > 0 && len(b.kek) == 0 {
		b.log.Warn("snapshot: DTLS pre-shared keys left out: no device KEK is configured", "count", len(psks))
		return nil
	}
	for _, p := range psks {
		key, err := pki.OpenSecret(b.kek, pki.PurposePSK, p.TenantID, p.SealedKey)
		if err != nil {
			b.log.Warn("snapshot: DTLS pre-shared key left out", "tenant", p.TenantID, "psk", p.ID, "err", err)
			continue
		}
		in.PSKs = append(in.PSKs, policy.PSKInput{ID: p.ID, Tenant: p.TenantID, Device: p.DeviceID, Identity: p.Identity, Key: key})
	}
	return nil
}
