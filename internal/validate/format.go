package validate

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// nativeFormat checks a string or a number literal without boxing it. The
// formats common in fleet APIs are implemented here and also registered
// with the schema compiler, so that the library (used for exotic keywords)
// and the evaluator agree on what is valid.
type nativeFormat struct {
	str func(string) error // nil: does not apply to strings
	num func(string) error // nil: does not apply to numbers
}

var errFormat = errors.New("invalid value")

func nativeFormats() map[string]nativeFormat {
	return map[string]nativeFormat{
		"date-time": {str: checkDateTime},
		"date":      {str: checkDate},
		"uuid":      {str: checkUUID},
		"int32":     {num: intRange(math.MinInt32, math.MaxInt32)},
		"int64":     {num: intRange(math.MinInt64, math.MaxInt64)},
	}
}

// registerFormats installs the native formats in the compiler.
func registerFormats(c *jsonschema.Compiler) {
	for name, f := range nativeFormats() {
		c.RegisterFormat(&jsonschema.Format{Name: name, Validate: f.boxed})
	}
}

// boxed adapts a native format to the library's interface.
func (f nativeFormat) boxed(v any) error {
	switch v := v.(type) {
	case string:
		if f.str != nil {
			return f.str(v)
		}
	case json.Number:
		if f.num != nil {
			return f.num(string(v))
		}
	}
	return nil
}

// intRange checks that an integer literal fits the OpenAPI int32/int64
// format. Non-integers are left to the "type" keyword.
func intRange(lo, hi int64) func(string) error {
	return func(lit string) error {
		if !isIntLiteral(lit) {
			return nil
		}
		v, err := strconv.ParseInt(lit, 10, 64)
		if err != nil || v < lo || v > hi {
			return errors.New("integer out of range")
		}
		return nil
	}
}

func digits(s string, n int) (int, bool) {
	if len(s) < n {
		return 0, false
	}
	v := 0
	for i := 0; i < n; i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, true
}

// checkDate checks an RFC 3339 full-date (section 5.6), leap years included.
func checkDate(s string) error {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return errFormat
	}
	y, ok1 := digits(s, 4)
	m, ok2 := digits(s[5:], 2)
	d, ok3 := digits(s[8:], 2)
	if !ok1 || !ok2 || !ok3 || m < 1 || m > 12 || d < 1 {
		return errFormat
	}
	days := [13]int{0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}[m]
	if m == 2 && y%4 == 0 && (y%100 != 0 || y%400 == 0) {
		days = 29
	}
	if d > days {
		return errFormat
	}
	return nil
}

// checkDateTime checks an RFC 3339 date-time (section 5.6): full-date "T"
// partial-time time-offset, "T" and "Z" case-insensitive. A leap second is
// accepted only at 23:59:60 UTC.
func checkDateTime(s string) error {
	if len(s) < 20 || (s[10] != 'T' && s[10] != 't') {
		return errFormat
	}
	if err := checkDate(s[:10]); err != nil {
		return err
	}
	t := s[11:]
	h, ok1 := digits(t, 2)
	mi, ok2 := digits(t[3:], 2)
	sec, ok3 := digits(t[6:], 2)
	if !ok1 || !ok2 || !ok3 || t[2] != ':' || t[5] != ':' || h > 23 || mi > 59 || sec > 60 {
		return errFormat
	}
	t = t[8:]
	if len(t) > 0 && t[0] == '.' {
		i := 1
		for i < len(t) && t[i] >= '0' && t[i] <= '9' {
			i++
		}
		if i == 1 {
			return errFormat
		}
		t = t[i:]
	}
	offset := 0
	switch {
	case t == "Z" || t == "z":
	case len(t) == 6 && (t[0] == '+' || t[0] == '-') && t[3] == ':':
		oh, ok1 := digits(t[1:], 2)
		om, ok2 := digits(t[4:], 2)
		if !ok1 || !ok2 || oh > 23 || om > 59 {
			return errFormat
		}
		offset = oh*60 + om
		if t[0] == '+' {
			offset = -offset
		}
	default:
		return errFormat
	}
	if sec == 60 {
		utc := ((h*60+mi+offset)%1440 + 1440) % 1440
		if utc != 23*60+59 {
			return errFormat
		}
	}
	return nil
}

// checkUUID checks the RFC 9562 textual form 8-4-4-4-12 hex digits.
func checkUUID(s string) error {
	if len(s) != 36 {
		return errFormat
	}
	for i := 0; i < 36; i++ {
		c := s[i]
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if c != '-' {
				return errFormat
			}
			continue
		}
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return errFormat
		}
	}
	return nil
}

var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// parseNumber converts a JSON number literal to the nearest float64. Short
// decimals take the exact fast path (a mantissa below 2^53 scaled by an
// exactly representable power of ten is correctly rounded by one IEEE
// operation); the rest go to strconv.
func parseNumber(lit string) float64 {
	i, neg := 0, false
	if i < len(lit) && lit[i] == '-' {
		neg, i = true, 1
	}
	var mant uint64
	exp, nd := 0, 0
	for ; i < len(lit) && lit[i] >= '0' && lit[i] <= '9'; i++ {
		mant = mant*10 + uint64(lit[i]-'0')
		nd++
	}
	if i < len(lit) && lit[i] == '.' {
		for i++; i < len(lit) && lit[i] >= '0' && lit[i] <= '9'; i++ {
			mant = mant*10 + uint64(lit[i]-'0')
			nd++
			exp--
		}
	}
	if i == len(lit) && nd <= 15 && exp >= -22 {
		f := float64(mant)
		if exp < 0 {
			f /= pow10[-exp]
		}
		if neg {
			f = -f
		}
		return f
	}
	f, _ := strconv.ParseFloat(lit, 64) // ErrRange still yields the rounded ±Inf or 0
	return f
}
