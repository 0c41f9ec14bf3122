package validate

import (
	"bytes"
	"encoding/json"
	"math/big"
	"strconv"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		ok       bool
	}{
		{name: "object", in: ` {"a": [1, -2.5e-3, true, false, null, "x\u00e9\ud83d\ude00"]} `, ok: true},
		{name: "empty containers", in: `[{}, []]`, ok: true},
		{name: "scalar", in: `"just a string"`, ok: true},
		{name: "max depth", in: strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth), ok: true},
		{name: "too deep", in: strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1)},
		{name: "too deep objects", in: strings.Repeat(`{"a":`, maxDepth+1) + "1" + strings.Repeat("}", maxDepth+1)},
		{name: "empty", in: ``},
		{name: "leading zero", in: `01`},
		{name: "bare dot", in: `1.`},
		{name: "plus", in: `+1`},
		{name: "trailing comma", in: `[1,]`},
		{name: "single quotes", in: `'a'`},
		{name: "control character", in: "\"a\tb\""},
		{name: "bad escape", in: `"\x"`},
		{name: "lone low surrogate", in: `"\udc00"`},
		{name: "high surrogate then non-surrogate", in: `"\ud800\u0041"`},
		{name: "invalid UTF-8", in: "\"\xc3\x28\""},
		{name: "encoded surrogate", in: "\"\xed\xa0\x80\""},
		{name: "duplicate member", in: `{"a":1,"b":2,"a":3}`},
		{name: "duplicate member in large object", in: largeObject(100, true)},
		{name: "large object", in: largeObject(100, false), ok: true},
		{name: "trailing data", in: `1 2`},
		{name: "truncated literal", in: `tru`},
		{name: "exponent at limit", in: `[1e1024, 1E-1024, 1e+0001024]`, ok: true},
		{name: "huge exponent", in: `1.5e1025`},
		{name: "huge negative exponent", in: `1e-99999999999999999999`},
		{name: "very long number", in: "1" + strings.Repeat("0", maxNumberLen)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var d doc
			_, err := d.parse([]byte(tc.in))
			if (err == nil) != tc.ok {
				t.Fatalf("parse(%q) error = %v, want ok=%v", tc.in, err, tc.ok)
			}
		})
	}
}

func largeObject(n int, dup bool) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		k := i
		if dup && i == n-1 {
			k = 40
		}
		b.WriteString(`"k` + strconv.Itoa(k) + `":1`)
	}
	b.WriteByte('}')
	return b.String()
}

// FuzzParse checks the parser against encoding/json: whatever this parser
// accepts, encoding/json accepts with the same value. (The reverse does not
// hold by design: duplicates, bad UTF-8 and lone surrogates are refused.)
func FuzzParse(f *testing.F) {
	for _, s := range []string{`{"a":[1,2.5e3,"x\u00e9"]}`, `[]`, `"\ud83d\ude00"`, `{"a":{"b":null}}`, `-0.0e-0`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var d doc
		root, err := d.parse(in)
		if err != nil {
			return
		}
		dec := json.NewDecoder(bytes.NewReader(in))
		dec.UseNumber()
		var want any
		if err := dec.Decode(&want); err != nil {
			t.Fatalf("accepted %q which encoding/json refuses: %v", in, err)
		}
		got, _ := json.Marshal(toAny(&d, &root))
		wantJSON, _ := json.Marshal(want)
		if !bytes.Equal(got, wantJSON) {
			t.Fatalf("value differs for %q: got %s, want %s", in, got, wantJSON)
		}
	})
}

func TestParseNumber(t *testing.T) {
	for _, lit := range []string{"0", "-0", "1", "3.71", "0.1", "123456789012345", "1234567890123456789", "1e308", "1e309", "-1e-400", "2.5e-3", "0.000000000000000000000001", "9007199254740993", "4.35"} {
		want, _ := strconv.ParseFloat(lit, 64)
		if got := parseNumber(lit); got != want {
			t.Errorf("parseNumber(%s) = %v, want %v", lit, got, want)
		}
	}
}

// TestCmpFloat checks the float shortcut of bound comparisons against exact
// rational arithmetic, on values chosen to sit at or next to the bounds.
func TestCmpFloat(t *testing.T) {
	bounds := []string{"0", "100", "0.1", "-90", "1e-7", "9007199254740993", "0.30000000000000004", "1.0000000000000002220446049250313080847263336181640625"}
	lits := []string{"0", "-0", "0.0", "100", "100.0", "100.00000000000001", "99.99999999999999", "0.1", "0.10000000000000001", "0.09999999999999999",
		"-90", "-90.0000000000000001", "1e-7", "1.0e-7", "9007199254740992", "9007199254740993", "9007199254740994", "0.30000000000000004", "0.3",
		"1", "1.0000000000000002", "1.0000000000000002220446049250313080847263336181640625"}
	for _, bs := range bounds {
		r, _ := new(big.Rat).SetString(bs)
		b := newBound(r)
		for _, lit := range lits {
			lr, _ := new(big.Rat).SetString(lit)
			if got, want := cmpFloat(parseNumber(lit), lit, b), lr.Cmp(r); got != want {
				t.Errorf("cmp(%s, %s) = %d, want %d", lit, bs, got, want)
			}
		}
	}
}

func TestFormats(t *testing.T) {
	for _, tc := range []struct {
		check func(string) error
		in    string
		ok    bool
	}{
		{checkDateTime, "2024-02-29T23:59:59.123+01:00", true},
		{checkDateTime, "2024-05-01t12:00:00z", true},
		{checkDateTime, "1990-12-31T23:59:60Z", true},
		{checkDateTime, "1990-12-31T15:59:60-08:00", true},
		{checkDateTime, "1990-12-31T23:58:60Z", false},
		{checkDateTime, "2023-02-29T00:00:00Z", false},
		{checkDateTime, "2024-05-01T24:00:00Z", false},
		{checkDateTime, "2024-05-01T12:00:00", false},
		{checkDateTime, "2024-05-01T12:00:00.Z", false},
		{checkDateTime, "2024-05-01T12:00:00+0100", false},
		{checkDate, "2000-02-29", true},
		{checkDate, "1900-02-29", false},
		{checkDate, "2024-13-01", false},
		{checkUUID, "123e4567-e89b-12d3-a456-426614174000", true},
		{checkUUID, "123e4567e89b12d3a456426614174000", false},
		{intRange(-2147483648, 2147483647), "2147483648", false},
		{intRange(-2147483648, 2147483647), "-2147483648", true},
		{intRange(-2147483648, 2147483647), "1.5", true}, // left to "type"
	} {
		if err := tc.check(tc.in); (err == nil) != tc.ok {
			t.Errorf("%q: err = %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}
