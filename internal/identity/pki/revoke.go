package pki

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"

	// Hash implementations OCSP CertIDs may name (RFC 6960 §4.1.1); the
	// import registers them with crypto.Hash.
	_ "crypto/sha1"
	_ "crypto/sha256"
	_ "crypto/sha512"
)

// Revoked is one revoked certificate as the caller's store records it.
// Reason is an RFC 5280 §5.3.1 CRLReason: 0-6 or 8-10 (7 is unassigned).
type Revoked struct {
	Serial *big.Int
	At     time.Time
	Reason int
}

func validReason(r int) bool { return r >= 0 && r <= 10 && r != 7 }

// CRL returns a DER X.509 v2 CRL (RFC 5280 §5) listing revoked, signed by the
// CA, with thisUpdate now and nextUpdate now+nextUpdate. number is the
// cRLNumber (RFC 5280 §5.2.3): the caller must make it strictly increase
// across the CRLs it publishes for this CA, which is why it is not derived
// here. Entries are sorted by serial so that the same state always gives the
// same CRL body. Reason 0 (unspecified) is written as an absent reasonCode
// extension, as §5.3.1 asks.
func (ca *CA) CRL(revoked []Revoked, number *big.Int, now time.Time, nextUpdate time.Duration) ([]byte, error) {
	if number == nil || number.Sign() < 0 {
		return nil, perr(CodeInvalidValidity, "CRL number must be a non-negative integer")
	}
	if now.IsZero() || nextUpdate <= 0 {
		return nil, perr(CodeInvalidValidity, "CRL needs now and a positive nextUpdate interval")
	}
	entries := make([]x509.RevocationListEntry, 0, len(revoked))
	for i, r := range revoked {
		if r.Serial == nil || r.Serial.Sign() <= 0 || r.At.IsZero() || !validReason(r.Reason) {
			return nil, perr(CodeInvalidValidity, fmt.Sprintf("revoked[%d]: need a positive serial, a time and an RFC 5280 reason", i))
		}
		entries = append(entries, x509.RevocationListEntry{
			SerialNumber:   r.Serial,
			RevocationTime: r.At.UTC(),
			ReasonCode:     r.Reason,
		})
	}
	slices.SortFunc(entries, func(a, b x509.RevocationListEntry) int { return a.SerialNumber.Cmp(b.SerialNumber) })
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number:                    number,
		ThisUpdate:                now.UTC(),
		NextUpdate:                now.Add(nextUpdate).UTC(),
		RevokedCertificateEntries: entries,
	}, ca.Cert, ca.key)
	if err != nil {
		return nil, fmt.Errorf("pki: sign CRL: %w", err)
	}
	return der, nil
}

// OCSPStatus is a certificate's status as the caller's store knows it. The
// zero value is OCSPUnknown, so a lookup that forgets to set it never
// vouches for a certificate.
type OCSPStatus int

// The three statuses of RFC 6960 §2.2.
const (
	OCSPUnknown OCSPStatus = iota
	OCSPGood
	OCSPRevoked
)

const (
	// MaxOCSPRequestSize bounds OCSP requests. A single-certificate
	// request with a SHA-512 CertID and a 32-byte nonce is under 300
	// bytes.
	MaxOCSPRequestSize = 4 << 10
	// OCSPValidity is the interval between a response's thisUpdate and
	// nextUpdate: how long clients and caches may rely on it (RFC 5019
	// §2.2.4). An hour keeps a revocation effective within the hour.
	OCSPValidity = time.Hour

	maxNonceLen = 32 // RFC 8954: Nonce ::= OCTET STRING (SIZE(1..32))
)

// OCSP error responses (RFC 6960 §4.2.1): an OCSPResponse whose status is
// not successful carries no responseBytes and no signature. They are
// constants so that every call returns a fresh slice the caller may keep.
const (
	ocspMalformedRequest = "\x30\x03\x0a\x01\x01"
	ocspInternalError    = "\x30\x03\x0a\x01\x02"
	ocspUnauthorized     = "\x30\x03\x0a\x01\x06"
)

var (
	oidSHA1      = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidSHA256    = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA384    = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidSHA512    = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}
	oidOCSPBasic = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 1}
	oidOCSPNonce = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 2}
)

// ASN.1 of RFC 6960 §4.1.1 (the module uses EXPLICIT tagging).
type ocspRequest struct {
	TBSRequest        tbsRequest
	OptionalSignature asn1.RawValue `asn1:"explicit,tag:0,optional"`
}

type tbsRequest struct {
	Version       int              `asn1:"explicit,tag:0,default:0,optional"`
	RequestorName asn1.RawValue    `asn1:"explicit,tag:1,optional"`
	RequestList   []singleRequest  // SEQUENCE OF Request
	Extensions    []pkix.Extension `asn1:"explicit,tag:2,optional"`
}

type singleRequest struct {
	CertID     certID
	Extensions []pkix.Extension `asn1:"explicit,tag:0,optional"`
}

type certID struct {
	Raw           asn1.RawContent
	HashAlgorithm pkix.AlgorithmIdentifier
	NameHash      []byte
	KeyHash       []byte
	Serial        *big.Int
}

// parsedOCSP is what OCSPResponse needs from a request.
type parsedOCSP struct {
	certIDRaw []byte
	serial    *big.Int
	nonce     []byte // the nonce extension's extnValue, echoed as is
}

// ParseOCSPRequest returns the serial an OCSP request (DER, RFC 6960 §4.1.1)
// asks about, after checking that the request names this CA: its
// issuerNameHash and issuerKeyHash must be the hashes of this CA's subject
// and public key under the request's hash algorithm (SHA-1, SHA-256,
// SHA-384 or SHA-512). A request about another issuer is CodeUnknownIssuer;
// one that does not parse, carries more than one CertID (RFC 5019 §2.1.1) or
// exceeds MaxOCSPRequestSize is CodeMalformedOCSP or CodeTooLarge.
// A request signature, which RFC 5019 §2.1.2 lets responders ignore, is
// ignored: status information is public.
func (ca *CA) ParseOCSPRequest(der []byte) (serial *big.Int, err error) {
	p, err := ca.parseOCSP(der)
	if err != nil {
		return nil, err
	}
	return p.serial, nil
}

func (ca *CA) parseOCSP(der []byte) (*parsedOCSP, error) {
	if len(der) > MaxOCSPRequestSize {
		return nil, perr(CodeTooLarge, fmt.Sprintf("OCSP request exceeds %d bytes", MaxOCSPRequestSize))
	}
	var req ocspRequest
	rest, err := asn1.Unmarshal(der, &req)
	if err != nil {
		return nil, perr(CodeMalformedOCSP, err.Error())
	}
	if len(rest) != 0 {
		return nil, perr(CodeMalformedOCSP, "trailing data")
	}
	tbs := req.TBSRequest
	switch {
	case tbs.Version != 0:
		return nil, perr(CodeMalformedOCSP, "unsupported version")
	case len(tbs.RequestList) == 0:
		return nil, perr(CodeMalformedOCSP, "no CertID")
	case len(tbs.RequestList) > 1:
		return nil, perr(CodeMalformedOCSP, "more than one CertID (RFC 5019 §2.1.1 allows one)")
	}
	id := tbs.RequestList[0].CertID
	if id.Serial == nil {
		return nil, perr(CodeMalformedOCSP, "no serial number")
	}
	var h crypto.Hash
	switch alg := id.HashAlgorithm.Algorithm; {
	case alg.Equal(oidSHA1):
		h = crypto.SHA1
	case alg.Equal(oidSHA256):
		h = crypto.SHA256
	case alg.Equal(oidSHA384):
		h = crypto.SHA384
	case alg.Equal(oidSHA512):
		h = crypto.SHA512
	default:
		return nil, perr(CodeMalformedOCSP, "unsupported CertID hash algorithm")
	}
	if !bytes.Equal(id.NameHash, hashOf(h, ca.Cert.RawSubject)) || !bytes.Equal(id.KeyHash, hashOf(h, ca.keyBits)) {
		return nil, perr(CodeUnknownIssuer, "the request is about a certificate of another issuer")
	}
	p := &parsedOCSP{certIDRaw: id.Raw, serial: id.Serial}
	for _, ext := range tbs.Extensions {
		if !ext.Id.Equal(oidOCSPNonce) {
			continue
		}
		var nonce []byte
		if rest, err := asn1.Unmarshal(ext.Value, &nonce); err == nil && len(rest) == 0 &&
			len(nonce) >= 1 && len(nonce) <= maxNonceLen {
			p.nonce = ext.Value
		}
	}
	return p, nil
}

func hashOf(h crypto.Hash, data []byte) []byte {
	w := h.New()
	w.Write(data)
	return w.Sum(nil)
}

// ASN.1 of RFC 6960 §4.2.1.
type ocspResponse struct {
	Status   asn1.Enumerated
	Response responseBytes `asn1:"explicit,tag:0"`
}

type responseBytes struct {
	ResponseType asn1.ObjectIdentifier
	Response     []byte
}

type basicOCSPResponse struct {
	TBSResponseData    asn1.RawValue
	SignatureAlgorithm pkix.AlgorithmIdentifier
	Signature          asn1.BitString
}

type responseData struct {
	ResponderID asn1.RawValue
	ProducedAt  time.Time `asn1:"generalized"`
	Responses   []singleResponse
	Extensions  []pkix.Extension `asn1:"explicit,tag:1,optional"`
}

type singleResponse struct {
	CertID     asn1.RawValue
	CertStatus asn1.RawValue
	ThisUpdate time.Time `asn1:"generalized"`
	NextUpdate time.Time `asn1:"generalized,explicit,tag:0"`
}

type revokedInfo struct {
	RevocationTime time.Time       `asn1:"generalized"`
	Reason         asn1.Enumerated `asn1:"explicit,tag:0,optional"`
}

// OCSPResponse answers an OCSP request (DER) for this CA. lookup is asked
// for the status of the requested serial, and for revoked certificates the
// revocation time and RFC 5280 reason.
//
// The returned bytes are always a complete OCSPResponse to send back with
// Content-Type application/ocsp-response, whatever err says: a malformed or
// oversized request gets malformedRequest, a request about another issuer
// gets unauthorized (RFC 5019 §2.2.3: this responder is not authoritative
// for it), and a signing failure gets internalError together with a non-nil
// err for the caller's log. Those error responses are unsigned, as RFC 6960
// §4.2.1 specifies.
//
// A successful response is a BasicOCSPResponse signed by the CA key itself
// (RFC 6960 §4.2.2.2, so no responder certificate is embedded), identifying
// the responder by key hash (§4.2.1), with producedAt and thisUpdate now
// and nextUpdate now+OCSPValidity. The request's CertID is echoed byte for
// byte, and a nonce of 1-32 octets is echoed (RFC 8954); any other
// nonce is ignored, which RFC 8954 permits.
func (ca *CA) OCSPResponse(der []byte, lookup func(serial *big.Int) (OCSPStatus, time.Time, int), now time.Time) ([]byte, error) {
	if lookup == nil || now.IsZero() {
		return []byte(ocspInternalError), errors.New("pki: OCSPResponse needs a lookup and a time")
	}
	p, err := ca.parseOCSP(der)
	if err != nil {
		if errors.Is(err, &Error{Code: CodeUnknownIssuer}) {
			return []byte(ocspUnauthorized), nil
		}
		return []byte(ocspMalformedRequest), nil
	}
	status, revokedAt, reason := lookup(p.serial)
	var certStatus asn1.RawValue
	switch status {
	case OCSPGood:
		certStatus = asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0} // good [0] IMPLICIT NULL
	case OCSPRevoked:
		if revokedAt.IsZero() || !validReason(reason) {
			return []byte(ocspInternalError), fmt.Errorf("pki: OCSP lookup of serial %x: revoked without a time or with reason %d", p.serial, reason)
		}
		ri := revokedInfo{RevocationTime: revokedAt.UTC().Truncate(time.Second), Reason: asn1.Enumerated(reason)}
		inner, err := asn1.Marshal(ri)
		if err != nil {
			return []byte(ocspInternalError), fmt.Errorf("pki: OCSP revokedInfo: %w", err)
		}
		// revoked [1] IMPLICIT RevokedInfo: retag the SEQUENCE.
		certStatus = asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 1, IsCompound: true, Bytes: innerContents(inner)}
	default:
		certStatus = asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 2} // unknown [2] IMPLICIT NULL
	}
	now = now.UTC().Truncate(time.Second)
	keyHash, err := asn1.Marshal(ca.responderKeyHash)
	if err != nil {
		return []byte(ocspInternalError), fmt.Errorf("pki: OCSP responder id: %w", err)
	}
	rd := responseData{
		// byKey [2] EXPLICIT KeyHash (RFC 6960 §4.2.1).
		ResponderID: asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 2, IsCompound: true, Bytes: keyHash},
		ProducedAt:  now,
		Responses: []singleResponse{{
			CertID:     asn1.RawValue{FullBytes: p.certIDRaw},
			CertStatus: certStatus,
			ThisUpdate: now,
			NextUpdate: now.Add(OCSPValidity),
		}},
	}
	if p.nonce != nil {
		rd.Extensions = []pkix.Extension{{Id: oidOCSPNonce, Value: p.nonce}}
	}
	tbs, err := asn1.Marshal(rd)
	if err != nil {
		return []byte(ocspInternalError), fmt.Errorf("pki: OCSP response data: %w", err)
	}
	sig, err := ca.sign(tbs)
	if err != nil {
		return []byte(ocspInternalError), fmt.Errorf("pki: sign OCSP response: %w", err)
	}
	basic, err := asn1.Marshal(basicOCSPResponse{
		TBSResponseData:    asn1.RawValue{FullBytes: tbs},
		SignatureAlgorithm: ca.sigAlg,
		Signature:          asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)},
	})
	if err != nil {
		return []byte(ocspInternalError), fmt.Errorf("pki: OCSP basic response: %w", err)
	}
	out, err := asn1.Marshal(ocspResponse{
		Status:   0, // successful
		Response: responseBytes{ResponseType: oidOCSPBasic, Response: basic},
	})
	if err != nil {
		return []byte(ocspInternalError), fmt.Errorf("pki: OCSP response: %w", err)
	}
	return out, nil
}

// innerContents strips the tag and length from a DER element this package
// just marshalled, returning its contents octets.
func innerContents(der []byte) []byte {
	var rv asn1.RawValue
	if _, err := asn1.Unmarshal(der, &rv); err != nil {
		return nil
	}
	return rv.Bytes
}
