package app

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"sync"
	"time"
)

// maxVerifiedChains bounds the chain-verification cache; when it is full
// it is emptied and refilled (simple, and a device fleet's live
// certificates refill it within one reconnect wave).
const maxVerifiedChains = 100_000

// chainVerifier verifies client certificate chains against the
// --tls-client-ca pool, as crypto/tls does with VerifyClientCertIfGiven /
// RequireAndVerifyClientCert, but remembers each successful verification
// per exact chain (SHA-256 over the DER of every certificate presented),
// until the earliest NotAfter of the verified chain. A device reconnecting
// with the same certificate then costs a hash and a map lookup instead of
// an ECDSA signature verification per chain link (about 20 % of a full
// handshake on the server).
//
// What is still checked on every handshake: the proof of possession (the
// TLS CertificateVerify signature, by crypto/tls, before VerifyConnection
// runs), the validity period (cached entries carry their NotBefore and
// NotAfter) and, by the engine against the current snapshot, revocation
// and device status. Failures are not cached. The result does not depend
// on the snapshot (the trust anchors come from the --tls-client-ca file,
// fixed for the process's life), so a snapshot swap does not empty it.
type chainVerifier struct {
	roots    *x509.CertPool
	required bool // no certificate is an error (client-auth require)

	mu sync.Mutex
	ok map[[32]byte]validity
}

type validity struct{ notBefore, notAfter time.Time }

func newChainVerifier(roots *x509.CertPool, required bool) *chainVerifier {
	return &chainVerifier{roots: roots, required: required, ok: map[[32]byte]validity{}}
}

var errNoClientCert = errors.New("tls: client didn't provide a certificate")

// verify checks the peer chain of a completed handshake at now.
func (v *chainVerifier) verify(certs []*x509.Certificate, now time.Time) error {
	if len(certs) == 0 {
		if v.required {
			return errNoClientCert
		}
		return nil
	}
	key := chainKey(certs)
	v.mu.Lock()
	c, hit := v.ok[key]
	v.mu.Unlock()
	if hit && !now.Before(c.notBefore) && now.Before(c.notAfter) {
		return nil
	}
	opts := x509.VerifyOptions{Roots: v.roots, CurrentTime: now, Intermediates: x509.NewCertPool(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	for _, cert := range certs[1:] {
		opts.Intermediates.AddCert(cert)
	}
	chains, err := certs[0].Verify(opts)
	if err != nil {
		return &tls.CertificateVerificationError{UnverifiedCertificates: certs, Err: err}
	}
	// The cached window is the one every verified chain link allows; with
	// several verified chains, the first (shortest) one is kept.
	w := validity{notBefore: certs[0].NotBefore, notAfter: certs[0].NotAfter}
	for _, cert := range chains[0] {
		if cert.NotBefore.After(w.notBefore) {
			w.notBefore = cert.NotBefore
		}
		if cert.NotAfter.Before(w.notAfter) {
			w.notAfter = cert.NotAfter
		}
	}
	v.mu.Lock()
	if len(v.ok) >= maxVerifiedChains {
		clear(v.ok)
	}
	v.ok[key] = w
	v.mu.Unlock()
	return nil
}

// chainKey hashes the presented chain with length prefixes, so that two
// different chains never share a key.
func chainKey(certs []*x509.Certificate) [32]byte {
	h := sha256.New()
	var n [4]byte
	for _, c := range certs {
		binary.BigEndian.PutUint32(n[:], uint32(len(c.Raw)))
		h.Write(n[:])
		h.Write(c.Raw)
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}
