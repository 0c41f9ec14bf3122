package pki

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"strconv"
	"strings"
	"time"
)

// Weakness names the most serious cryptographic weakness of cert for a
// posture finding, or "" if none is known. It looks at certificates this
// package did not issue too (devices enrolled elsewhere, imported CAs), so
// it covers what ParseCSR would refuse:
//
//   - "md2-signature", "md5-signature": collisions are practical, the
//     signature proves nothing (RFC 6151);
//   - "rsa-<bits>": RSA under 2048 bits, "ecdsa-<curve>": a curve under
//     256 bits, "dsa-key": DSA, all below 112-bit security (NIST SP 800-57
//     Part 1 §5.6.1, SP 800-131A Rev. 2 §3);
//   - "sha1-signature": chosen-prefix collisions were shown in 2020
//     (SHA-1 is a Shambles), and crypto/x509 no longer verifies them.
//
// Key weaknesses are reported before signature ones except for MD2/MD5,
// which are worse than any key size.
func Weakness(cert *x509.Certificate) string {
	if cert == nil {
		return ""
	}
	switch cert.SignatureAlgorithm {
	case x509.MD2WithRSA:
		return "md2-signature"
	case x509.MD5WithRSA:
		return "md5-signature"
	}
	switch k := cert.PublicKey.(type) {
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < 2048 {
			return "rsa-" + strconv.Itoa(n)
		}
	case *ecdsa.PublicKey:
		if p := k.Curve.Params(); p.BitSize < 256 {
			return "ecdsa-" + strings.ToLower(strings.ReplaceAll(p.Name, "-", ""))
		}
	}
	if cert.PublicKeyAlgorithm == x509.DSA {
		return "dsa-key"
	}
	switch cert.SignatureAlgorithm {
	case x509.SHA1WithRSA, x509.DSAWithSHA1, x509.ECDSAWithSHA1:
		return "sha1-signature"
	}
	return ""
}

// ExpiresWithin reports whether cert's NotAfter falls at or before now+d,
// so that a renewal finding fires for a certificate that expires within the
// window, on its last instant, or has already expired. A nil certificate
// counts as expired.
func ExpiresWithin(cert *x509.Certificate, d time.Duration, now time.Time) bool {
	return cert == nil || !cert.NotAfter.After(now.Add(d))
}
