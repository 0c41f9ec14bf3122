// Package credential verifies the credentials that applications present to
// the data plane: opaque API keys and JWTs.
//
// The package never touches storage. The gateway resolves what verification
// needs (API key hashes, JWT issuer settings) from its immutable config
// snapshot and hands it in; everything here is a pure function of that input
// plus, for JWKS-backed JWT verification, a cached copy of the issuer's
// published keys. That keeps each check testable alone and keeps the request
// path free of database round trips.
package credential

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"
)

const (
	// APIKeyPrefix marks Fleetgate API keys. A fixed prefix lets secret
	// scanners (and humans reading logs) recognise a leaked key, and lets
	// LooksLikeAPIKey discard other bearer strings without hashing them.
	APIKeyPrefix = "fgk_"

	// apiKeyRandomBytes is the key's entropy. 256 bits puts guessing out of
	// reach, which is also what makes an unsalted SHA-256 sufficient storage
	// (see HashAPIKey).
	apiKeyRandomBytes = 32

	// apiKeyBodyLen is len(base64.RawURLEncoding.EncodeToString(32 bytes)).
	apiKeyBodyLen = (apiKeyRandomBytes*8 + 5) / 6

	// APIKeyLen is the length of every key returned by NewAPIKey.
	APIKeyLen = len(APIKeyPrefix) + apiKeyBodyLen

	// APIKeyDisplayLen is how much of a key may be shown after creation
	// (in consoles, audit records): the prefix plus 8 random characters,
	// 48 bits, enough to tell keys apart, far too little to help a guesser.
	APIKeyDisplayLen = 12
)

// NewAPIKey returns a new key "fgk_" + 43 base64url chars (32 random bytes),
// its display prefix (first 12 chars) and its SHA-256 hash, which is all that
// is stored. The secret is shown to its owner once and then forgotten.
func NewAPIKey() (secret, prefix string, hash [32]byte) {
	var raw [apiKeyRandomBytes]byte
	// Since Go 1.24 crypto/rand.Read never returns an error: it crashes the
	// program irrecoverably if the OS cannot supply randomness, which is the
	// right outcome for a key generator.
	_, _ = rand.Read(raw[:])
	secret = APIKeyPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	return secret, secret[:APIKeyDisplayLen], HashAPIKey(secret)
}

// HashAPIKey hashes a presented key for lookup in the snapshot's
// map[[32]byte]... of stored key hashes.
//
// No constant-time comparison is needed, and none would help. The lookup
// compares digests, not secrets: whatever a timing side channel of the map
// reveals is about SHA-256(presented key), a value the attacker computes
// anyway. Learning that a stored digest shares leading bytes with the digest
// of a guess does not help to find a preimage of the stored digest (SHA-256
// is preimage resistant, and the keys carry 256 bits of entropy, so they
// cannot be enumerated either). Go maps additionally hash keys with a
// per-process random seed, so bucket timing does not even correlate with
// digest bytes. A plain salt-free hash is fine for the same reason: salts
// defend low-entropy passwords against precomputation, which a 256-bit random
// key already defeats.
func HashAPIKey(secret string) [32]byte {
	// []byte(secret) heap-allocates for strings over 32 bytes, and every key
	// is 47. Copying into a stack array keeps the per-request path
	// allocation-free; LooksLikeAPIKey runs first, so longer input is rare.
	var buf [64]byte
	if len(secret) <= len(buf) {
		n := copy(buf[:], secret)
		return sha256.Sum256(buf[:n])
	}
	return sha256.Sum256([]byte(secret))
}

// LooksLikeAPIKey is a cheap syntactic check (prefix, length, base64url
// alphabet) run before HashAPIKey, so that garbage, JWTs and oversized
// headers are turned away without hashing and never reach the key index.
// A true result says nothing about whether the key exists.
func LooksLikeAPIKey(s string) bool {
	if len(s) != APIKeyLen || !strings.HasPrefix(s, APIKeyPrefix) {
		return false
	}
	for i := len(APIKeyPrefix); i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}
