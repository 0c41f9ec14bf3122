// Package audit computes and verifies the hash chain of the audit log.
//
// Each tenant has its own chain: record n carries the hash of record n-1
// (PrevHash) and its own Hash over a canonical encoding of every field. An
// edit of any field, a deleted record in the middle, or a deleted tail (the
// chain head kept beside the log disagrees) is detected by Verify.
package audit

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/fleetgate/fleetgate/internal/model"
)

// Genesis is the PrevHash of the first record of every chain.
const Genesis = "0000000000000000000000000000000000000000000000000000000000000000"

// Digest returns a short, stable digest of an object's JSON form, recorded
// as the before/after digest of a change. nil gives "".
func Digest(v any) string {
	if v == nil {
		return ""
	}
	b, err := json.Marshal(v)
	if err != nil || string(b) == "null" {
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Seal sets rec.PrevHash to prev and computes rec.Hash. rec.Seq and rec.At
// must already be set.
func Seal(prev string, rec *model.AuditRecord) {
	rec.PrevHash = prev
	rec.Hash = Hash(rec)
}

// Hash computes the hash of a record over a length-prefixed encoding of all
// its fields, so that no two distinct records share an encoding.
func Hash(rec *model.AuditRecord) string {
	h := sha256.New()
	var buf [8]byte
	field := func(s string) {
		binary.BigEndian.PutUint64(buf[:], uint64(len(s)))
		h.Write(buf[:])
		h.Write([]byte(s))
	}
	binary.BigEndian.PutUint64(buf[:], uint64(rec.Seq))
	h.Write(buf[:])
	binary.BigEndian.PutUint64(buf[:], uint64(rec.At.UnixMicro()))
	h.Write(buf[:])
	field(rec.TenantID)
	field(rec.Actor)
	field(rec.Action)
	field(rec.ObjectType)
	field(rec.ObjectID)
	field(rec.BeforeDigest)
	field(rec.AfterDigest)
	field(rec.RequestID)
	field(string(rec.Detail))
	field(rec.PrevHash)
	return hex.EncodeToString(h.Sum(nil))
}

// Break describes the first broken link found by a Verifier.
type Break struct {
	Tenant string `json:"tenant"`
	Seq    int64  `json:"seq"`
	Reason string `json:"reason"`
}

// Verifier checks one tenant's chain record by record, in sequence order, so
// that a long log is verified in pages without holding it in memory.
type Verifier struct {
	tenant  string
	prevSeq int64
	prev    string
	Checked int64
	Broken  *Break
}

// NewVerifier starts verification of tenant's chain.
func NewVerifier(tenant string) *Verifier {
	return &Verifier{tenant: tenant, prev: Genesis}
}

// Next checks the next record. It returns false once a break was found.
func (v *Verifier) Next(rec *model.AuditRecord) bool {
	if v.Broken != nil {
		return false
	}
	fail := func(reason string, args ...any) bool {
		v.Broken = &Break{Tenant: v.tenant, Seq: rec.Seq, Reason: fmt.Sprintf(reason, args...)}
		return false
	}
	switch {
	case rec.Seq != v.prevSeq+1:
		return fail("sequence gap: expected %d, found %d (records deleted)", v.prevSeq+1, rec.Seq)
	case rec.PrevHash != v.prev:
		return fail("prev_hash does not match the hash of record %d", v.prevSeq)
	case Hash(rec) != rec.Hash:
		return fail("record content does not match its hash (record edited)")
	}
	v.prevSeq, v.prev = rec.Seq, rec.Hash
	v.Checked++
	return true
}

// Finish compares the end of the chain with the head row kept beside it,
// which detects a deleted or replaced tail.
func (v *Verifier) Finish(headSeq int64, headHash string) *Break {
	if v.Broken != nil {
		return v.Broken
	}
	if headSeq != v.prevSeq || (headSeq > 0 && headHash != v.prev) {
		v.Broken = &Break{Tenant: v.tenant, Seq: v.prevSeq + 1,
			Reason: fmt.Sprintf("chain ends at %d but head records %d (tail deleted or replaced)", v.prevSeq, headSeq)}
	}
	return v.Broken
}

// Now returns the current time truncated to microseconds, the precision
// every backend stores, so that hashes computed before and after a round
// trip agree.
func Now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }
