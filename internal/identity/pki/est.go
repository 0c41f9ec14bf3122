package pki

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
)

// MaxESTRequestSize bounds an EST enrolment body before decoding. Base64
// with line breaks is about 4/3 of MaxCSRSize plus newlines; four times is
// room for any sane client without letting a body tie up the decoder.
const MaxESTRequestSize = 64 << 10

// DecodeESTRequest decodes the body of an EST /simpleenroll or
// /simplereenroll request (RFC 7030 §4.2.1, transfer encoding clarified by
// RFC 8951): the base64 encoding (RFC 4648 §4) of a DER PKCS#10 request,
// possibly broken into lines as MIME base64 is (RFC 2045 §6.8, whose
// decoders ignore line breaks). Missing padding is tolerated. The
// request then goes through the same checks as ParseCSR; the caller still
// has to authenticate the client and call Issue with the identity it
// established, since anything the CSR claims is only checked against it.
func DecodeESTRequest(body []byte) (*x509.CertificateRequest, error) {
	if len(body) > MaxESTRequestSize {
		return nil, perr(CodeTooLarge, fmt.Sprintf("EST request exceeds %d bytes", MaxESTRequestSize))
	}
	compact := make([]byte, 0, len(body))
	for _, c := range body {
		switch c {
		case ' ', '\t', '\r', '\n':
		default:
			compact = append(compact, c)
		}
	}
	enc := base64.StdEncoding
	if len(compact)%4 != 0 {
		enc = base64.RawStdEncoding
	}
	der := make([]byte, enc.DecodedLen(len(compact)))
	n, err := enc.Decode(der, compact)
	if err != nil {
		return nil, perr(CodeMalformedCSR, "EST body is not base64")
	}
	return ParseCSR(der[:n])
}

// EncodeESTResponse encodes cert as the body of an EST enrolment response
// (RFC 7030 §4.2.3): a base64 "certs-only" CMS message, that is a degenerate
// SignedData with no signers that only carries certificates (RFC 5652 §5,
// the CMC Simple PKI Response of RFC 5272 §4.1). The caller sends it with
// Content-Type "application/pkcs7-mime; smime-type=certs-only" and may add
// Content-Transfer-Encoding: base64 for clients written before RFC 8951.
func EncodeESTResponse(cert *x509.Certificate) ([]byte, error) {
	if cert == nil || len(cert.Raw) == 0 {
		return nil, errors.New("pki: no certificate to encode")
	}
	return certsOnlyBase64(cert.Raw)
}

// CACertsPKCS7 is the body of an EST /cacerts response (RFC 7030 §4.1.3):
// this CA's certificate as a base64 certs-only message, encoded like
// EncodeESTResponse. Clients use it to bootstrap their trust anchor (and
// must authenticate it out of band, RFC 7030 §4.1.1).
func (ca *CA) CACertsPKCS7() ([]byte, error) {
	return certsOnlyBase64(ca.Cert.Raw)
}

var (
	oidPKCS7Data       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidPKCS7SignedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
)

// contentInfo is RFC 5652 §3 ContentInfo; content is [0] EXPLICIT, built
// by hand because encoding/asn1 ignores tag options on RawValue fields.
type contentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue
}

// signedData is RFC 5652 §5.1 SignedData without crls.
type signedData struct {
	Version          int
	DigestAlgorithms asn1.RawValue // SET OF, empty: nothing is signed
	EncapContentInfo encapContentInfo
	Certificates     asn1.RawValue // [0] IMPLICIT CertificateSet
	SignerInfos      asn1.RawValue // SET OF, empty
}

// encapContentInfo has no eContent: the message carries no content, only
// certificates (RFC 5652 §5.2, "degenerate case").
type encapContentInfo struct {
	EContentType asn1.ObjectIdentifier
}

// certsOnly builds the DER of a degenerate SignedData holding certs.
func certsOnly(certs ...[]byte) ([]byte, error) {
	// DER orders SET OF elements by their encodings (X.690 §11.6).
	sorted := slices.Clone(certs)
	slices.SortFunc(sorted, bytes.Compare)
	emptySet := asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSet, IsCompound: true}
	sd, err := asn1.Marshal(signedData{
		// Version 1: no attribute certificates, no "other" formats and
		// eContentType id-data (RFC 5652 §5.1).
		Version:          1,
		DigestAlgorithms: emptySet,
		EncapContentInfo: encapContentInfo{EContentType: oidPKCS7Data},
		Certificates: asn1.RawValue{
			Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true,
			Bytes: bytes.Join(sorted, nil),
		},
		SignerInfos: emptySet,
	})
	if err != nil {
		return nil, fmt.Errorf("pki: marshal SignedData: %w", err)
	}
	ci, err := asn1.Marshal(contentInfo{
		ContentType: oidPKCS7SignedData,
		Content:     asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: sd},
	})
	if err != nil {
		return nil, fmt.Errorf("pki: marshal ContentInfo: %w", err)
	}
	return ci, nil
}

// certsOnlyBase64 is certsOnly in base64 broken into 76-character CRLF
// lines, the MIME body form (RFC 2045 §6.8) that every EST client decodes.
func certsOnlyBase64(certs ...[]byte) ([]byte, error) {
	der, err := certsOnly(certs...)
	if err != nil {
		return nil, err
	}
	flat := base64.StdEncoding.EncodeToString(der)
	const line = 76
	out := make([]byte, 0, len(flat)+2*(len(flat)/line+1))
	for len(flat) > line {
		out = append(out, flat[:line]...)
		out = append(out, '\r', '\n')
		flat = flat[line:]
	}
	out = append(out, flat...)
	return append(out, '\r', '\n'), nil
}
