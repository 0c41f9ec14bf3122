package validate

import (
	"math"
	"math/big"
	"strconv"
	"strings"
)

// Value comparisons for the evaluator: number bounds without losing
// precision, and JSON Schema equality for const, enum and uniqueItems.

// cmpFloat compares a number literal, already rounded to f, with a bound.
// Rounding to float64 is monotonic, so different floats order the exact
// values too; equal floats mean equal values when both sides are short
// decimals (see shortLiteral); only the remaining cases pay for big.Rat,
// whose cost checkNumberRange bounds.
func cmpFloat(f float64, lit string, b *bound) int {
	switch {
	case f < b.f:
		return -1
	case f > b.f:
		return 1
	case b.short && shortLiteral(lit):
		return 0
	}
	r, ok := new(big.Rat).SetString(lit)
	if !ok {
		return 0
	}
	return r.Cmp(b.rat)
}

func multipleOf(lit string, b *bound) bool {
	if b.isInt && b.i > 0 && isIntLiteral(lit) {
		if v, err := strconv.ParseInt(lit, 10, 64); err == nil {
			return v%b.i == 0
		}
	}
	r, ok := new(big.Rat).SetString(lit)
	if !ok {
		return false
	}
	return r.Quo(r, b.rat).IsInt()
}

func isIntLiteral(lit string) bool {
	return strings.IndexAny(lit, ".eE") < 0
}

// isInteger applies JSON Schema's value-based notion: 1.0 and 1e2 are
// integers.
func isInteger(lit string) bool {
	if isIntLiteral(lit) {
		return true
	}
	if f, err := strconv.ParseFloat(lit, 64); err == nil && f != math.Trunc(f) && shortLiteral(lit) {
		return false
	}
	r, ok := new(big.Rat).SetString(lit)
	return ok && r.IsInt()
}

// equal is JSON Schema equality: numbers by value, objects regardless of
// member order.
func equal(da *doc, a *node, db *doc, b *node) bool {
	if a.kind != b.kind {
		return false
	}
	switch a.kind {
	case kString:
		return a.str == b.str
	case kNumber:
		return a.str == b.str || numEqual(a.str, b.str)
	case kArray:
		if a.n != b.n {
			return false
		}
		ak, bk := da.children(a), db.children(b)
		for i := range ak {
			if !equal(da, &ak[i], db, &bk[i]) {
				return false
			}
		}
		return true
	case kObject:
		if a.n != b.n {
			return false
		}
		bk := db.children(b)
		for _, am := range da.children(a) {
			bm := member(bk, am.key)
			if bm == nil || !equal(da, &am, db, bm) {
				return false
			}
		}
		return true
	}
	return true
}

func numEqual(a, b string) bool {
	fa, errA := strconv.ParseFloat(a, 64)
	fb, errB := strconv.ParseFloat(b, 64)
	if errA == nil && errB == nil && fa != fb {
		return false
	}
	ra, okA := new(big.Rat).SetString(a)
	rb, okB := new(big.Rat).SetString(b)
	return okA && okB && ra.Cmp(rb) == 0
}

// duplicate returns the indices of the first pair of equal items, or -1, -1.
// Small arrays are compared pairwise; larger ones are bucketed by a hash so a
// hostile array cannot make the check quadratic.
func duplicate(d *doc, items []node) (int, int) {
	if len(items) <= 32 {
		for j := 1; j < len(items); j++ {
			for i := 0; i < j; i++ {
				if equal(d, &items[i], d, &items[j]) {
					return i, j
				}
			}
		}
		return -1, -1
	}
	buckets := make(map[uint64][]int, len(items))
	for j := range items {
		h := hashNode(d, &items[j])
		for _, i := range buckets[h] {
			if equal(d, &items[i], d, &items[j]) {
				return i, j
			}
		}
		buckets[h] = append(buckets[h], j)
	}
	return -1, -1
}

// hashNode hashes consistently with equal: numbers by float value, object
// members order-independently.
func hashNode(d *doc, n *node) uint64 {
	const prime = 1099511628211
	h := uint64(n.kind) + 14695981039346656037
	switch n.kind {
	case kString:
		h = hashString(h, n.str)
	case kNumber:
		f, _ := strconv.ParseFloat(n.str, 64)
		if f == 0 {
			f = 0 // -0
		}
		h = (h ^ math.Float64bits(f)) * prime
	case kArray:
		for _, c := range d.children(n) {
			h = (h ^ hashNode(d, &c)) * prime
		}
	case kObject:
		var sum uint64
		for _, c := range d.children(n) {
			sum += hashString(hashNode(d, &c), c.key)
		}
		h = (h ^ sum) * prime
	}
	return h
}

func hashString(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * 1099511628211
	}
	return h
}
