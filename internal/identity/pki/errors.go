package pki

import "errors"

// Stable codes carried by *Error. They are part of the API: the admin API maps
// them to problem+json types and the EST endpoint to HTTP statuses, so they
// must never be renamed.
const (
	// CodeMalformedCSR: the bytes are not a PKCS#10 request (RFC 2986), or
	// not valid base64 for EST.
	CodeMalformedCSR = "malformed-csr"
	// CodeBadSignature: the CSR's self-signature does not verify, so the
	// requester has not proven possession of the private key (RFC 2986 §3);
	// or an external CA's verification certificate is not signed by that
	// CA's key (VerifyCAPossession).
	CodeBadSignature = "bad-signature"
	// CodeUnsupportedKey: a key type or size outside the accepted set.
	CodeUnsupportedKey = "unsupported-key"
	// CodeIdentityMismatch: the CSR names another device, or the identity
	// belongs to another tenant than the CA's, or a verification
	// certificate's common name is not the tenant's registration code.
	CodeIdentityMismatch = "identity-mismatch"
	// CodeTooLarge: an input exceeds its size limit; it was not parsed.
	CodeTooLarge = "too-large"
	// CodeInvalidValidity: a validity period, clock reading or CRL parameter
	// is out of range.
	CodeInvalidValidity = "invalid-validity"
	// CodeInvalidIdentity: a tenant or device id that cannot be encoded in
	// a certificate, or a certificate without a well-formed Fleetgate URN.
	CodeInvalidIdentity = "invalid-identity"
	// CodeMalformedOCSP: the bytes are not an OCSP request this responder
	// answers (RFC 6960 §4.1.1, profiled by RFC 5019 §2.1.1).
	CodeMalformedOCSP = "malformed-ocsp-request"
	// CodeUnknownIssuer: the OCSP request asks about a certificate issued by
	// another CA (its issuer name or key hash differs).
	CodeUnknownIssuer = "unknown-issuer"
)

// ErrKeyUnseal is returned by OpenCA when a sealed CA key cannot be opened.
// A wrong key-encryption key, a tampered or truncated blob and a blob sealed
// for another tenant all give this same error on purpose: telling them apart
// would hand an attacker who can feed blobs to OpenCA an oracle.
var ErrKeyUnseal = errors.New("pki: cannot unseal CA key")

// Error is the error type for rejected input. Code is one of the Code
// constants and is stable; Detail is a hint for operators and is not: match on
// Code. Detail never contains key material or secret configuration values.
type Error struct {
	Code   string
	Detail string
}

func (e *Error) Error() string {
	if e.Detail == "" {
		return "pki: " + e.Code
	}
	return "pki: " + e.Code + ": " + e.Detail
}

// Is lets callers test a code with errors.Is(err, &pki.Error{Code: ...});
// Detail is ignored.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

func perr(code, detail string) *Error { return &Error{Code: code, Detail: detail} }
