package validate

import (
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// maxDepth is the deepest container nesting a body may have. The parser and
// the evaluator both recurse per level, so the bound keeps their stack use
// small and fixed no matter what a client sends.
const maxDepth = 128

// kind is the JSON type of a node. Integers are not a separate kind: JSON
// Schema decides "integer" from the value, so numbers keep their literal.
type kind uint8

const (
	kNull kind = iota
	kFalse
	kTrue
	kNumber
	kString
	kArray
	kObject
)

// node is one JSON value of a parsed document. Containers do not own their
// children: the children of a container are the contiguous run
// doc.nodes[first:first+n], which lets a whole document live in one reusable
// slice with no per-value allocation.
type node struct {
	kind  kind
	key   string // the member name when the node is an object member
	str   string // the string value, or the number literal as written
	first int32  // containers: index of the first child in doc.nodes
	n     int32  // containers: number of children
}

// doc is a parsed JSON document. Strings without escapes alias the input
// bytes (see parse), so a doc must not outlive the buffer it was parsed from
// and must be reset before it goes back to its pool.
type doc struct {
	nodes []node
	stack []node // children of containers still open
	in    []byte
	pos   int
}

// reset drops every reference into the last input so the pool does not keep
// request bodies alive.
func (d *doc) reset() {
	clear(d.nodes)
	d.nodes = d.nodes[:0]
	clear(d.stack)
	d.stack = d.stack[:0]
	d.in = nil
}

// children returns the members or elements of a container.
func (d *doc) children(n *node) []node {
	return d.nodes[n.first : n.first+n.n]
}

// syntaxError is a malformed-body report; it never quotes the body beyond one
// character, so it is safe to log.
type syntaxError struct {
	off int
	msg string
}

func (e *syntaxError) Error() string { return fmt.Sprintf("offset %d: %s", e.off, e.msg) }

// parse decodes in as a single JSON text (RFC 8259) into d.
//
// It is stricter than encoding/json on purpose, because a gateway that reads
// a body differently from the service behind it can be bypassed:
//   - duplicate member names are refused (parsers disagree on which wins);
//   - invalid UTF-8 and unpaired surrogate escapes are refused rather than
//     replaced with U+FFFD;
//   - nesting deeper than maxDepth is refused before any validation;
//   - numbers with absurd exponents or lengths are refused (see
//     checkNumberRange), since exact comparisons on them are expensive.
//
// Strings without escapes are not copied: they alias in (unsafe.String). This
// is what makes parsing allocation-free, and it is sound because a doc lives
// only for one Validate call, during which the caller must not modify in.
func (d *doc) parse(in []byte) (node, error) {
	d.in, d.pos = in, 0
	d.skipSpace()
	root, err := d.value(0)
	if err != nil {
		return node{}, err
	}
	d.skipSpace()
	if d.pos != len(d.in) {
		return node{}, d.errorf("unexpected data after the top-level value")
	}
	return root, nil
}

func (d *doc) errorf(format string, args ...any) error {
	return &syntaxError{off: d.pos, msg: fmt.Sprintf(format, args...)}
}

func (d *doc) skipSpace() {
	for d.pos < len(d.in) {
		switch d.in[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

func (d *doc) value(depth int) (node, error) {
	if d.pos >= len(d.in) {
		return node{}, d.errorf("unexpected end of input")
	}
	switch c := d.in[d.pos]; c {
	case '{':
		return d.object(depth + 1)
	case '[':
		return d.array(depth + 1)
	case '"':
		s, err := d.string()
		return node{kind: kString, str: s}, err
	case 't':
		return node{kind: kTrue}, d.literal("true")
	case 'f':
		return node{kind: kFalse}, d.literal("false")
	case 'n':
		return node{kind: kNull}, d.literal("null")
	default:
		if c == '-' || (c >= '0' && c <= '9') {
			return d.number()
		}
		return node{}, d.errorf("invalid character %q looking for a value", c)
	}
}

func (d *doc) literal(word string) error {
	if !strings.HasPrefix(unsafe.String(unsafe.SliceData(d.in[d.pos:]), len(d.in)-d.pos), word) {
		return d.errorf("invalid literal, expected %s", word)
	}
	d.pos += len(word)
	return nil
}

// number scans an RFC 8259 number and keeps its literal, so that precision
// is never lost before the schema's bounds are applied.
func (d *doc) number() (node, error) {
	start := d.pos
	n := scanNumber(d.in[d.pos:])
	if n == 0 {
		return node{}, d.errorf("invalid number")
	}
	lit := d.alias(start, start+n)
	if err := checkNumberRange(lit); err != nil {
		return node{}, d.errorf("%v", err)
	}
	d.pos += n
	return node{kind: kNumber, str: lit}, nil
}

// Limits on number literals. Exact comparisons fall back to math/big, whose
// cost grows with the exponent: "1.5e1000000" takes tens of milliseconds,
// so a small body of such numbers would pin a CPU. No real payload comes
// near these limits (float64 spans about 1e-324 to 1e308).
const (
	maxNumberLen = 1024
	maxExponent  = 1024
)

// checkNumberRange refuses number literals past maxNumberLen or whose
// exponent part exceeds maxExponent in magnitude. lit must be a valid JSON
// number.
func checkNumberRange(lit string) error {
	if len(lit) > maxNumberLen {
		return fmt.Errorf("number literal longer than %d characters", maxNumberLen)
	}
	i := strings.IndexAny(lit, "eE")
	if i < 0 {
		return nil
	}
	exp := 0
	for _, c := range lit[i+1:] {
		if c >= '0' && c <= '9' {
			exp = exp*10 + int(c-'0')
			if exp > maxExponent {
				return fmt.Errorf("number exponent beyond ±%d", maxExponent)
			}
		}
	}
	return nil
}

// scanNumber returns the length of the JSON number at the start of b, or 0
// when b does not start with one. The grammar is
// -? (0 | [1-9][0-9]*) (\.[0-9]+)? ([eE][+-]?[0-9]+)?.
func scanNumber(b []byte) int {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return 0
	}
	if i < len(b) && b[i] == '.' {
		i++
		j := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == j {
			return 0
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == j {
			return 0
		}
	}
	return i
}

func (d *doc) alias(from, to int) string {
	if from == to {
		return ""
	}
	return unsafe.String(&d.in[from], to-from)
}

// string scans a string starting at the opening quote.
func (d *doc) string() (string, error) {
	d.pos++ // opening quote
	start := d.pos
	for d.pos < len(d.in) {
		c := d.in[d.pos]
		switch {
		case c == '"':
			s := d.alias(start, d.pos)
			d.pos++
			return s, nil
		case c == '\\':
			return d.unescape(start)
		case c < 0x20:
			return "", d.errorf("control character in string")
		case c < utf8.RuneSelf:
			d.pos++
		default:
			r, size := utf8.DecodeRune(d.in[d.pos:])
			if r == utf8.RuneError && size <= 1 {
				return "", d.errorf("invalid UTF-8 in string")
			}
			d.pos += size
		}
	}
	return "", d.errorf("unterminated string")
}

// unescape finishes a string that contains escapes; only these strings are
// copied.
func (d *doc) unescape(start int) (string, error) {
	buf := make([]byte, 0, d.pos-start+16)
	buf = append(buf, d.in[start:d.pos]...)
	for d.pos < len(d.in) {
		c := d.in[d.pos]
		switch {
		case c == '"':
			d.pos++
			return string(buf), nil
		case c == '\\':
			if d.pos+1 >= len(d.in) {
				return "", d.errorf("unterminated escape")
			}
			e := d.in[d.pos+1]
			d.pos += 2
			switch e {
			case '"', '\\', '/':
				buf = append(buf, e)
			case 'b':
				buf = append(buf, '\b')
			case 'f':
				buf = append(buf, '\f')
			case 'n':
				buf = append(buf, '\n')
			case 'r':
				buf = append(buf, '\r')
			case 't':
				buf = append(buf, '\t')
			case 'u':
				r, err := d.hexRune()
				if err != nil {
					return "", err
				}
				buf = utf8.AppendRune(buf, r)
			default:
				d.pos -= 2
				return "", d.errorf("invalid escape \\%c", e)
			}
		case c < 0x20:
			return "", d.errorf("control character in string")
		case c < utf8.RuneSelf:
			buf = append(buf, c)
			d.pos++
		default:
			r, size := utf8.DecodeRune(d.in[d.pos:])
			if r == utf8.RuneError && size <= 1 {
				return "", d.errorf("invalid UTF-8 in string")
			}
			buf = append(buf, d.in[d.pos:d.pos+size]...)
			d.pos += size
		}
	}
	return "", d.errorf("unterminated string")
}

// hexRune decodes the XXXX of a \uXXXX escape (already consumed up to the
// u), joining a UTF-16 surrogate pair and refusing a lone surrogate.
func (d *doc) hexRune() (rune, error) {
	r1, ok := d.hex4()
	if !ok {
		return 0, d.errorf("invalid \\u escape")
	}
	if !utf16.IsSurrogate(r1) {
		return r1, nil
	}
	if r1 < 0xDC00 && d.pos+1 < len(d.in) && d.in[d.pos] == '\\' && d.in[d.pos+1] == 'u' {
		d.pos += 2
		r2, ok := d.hex4()
		if ok {
			if r := utf16.DecodeRune(r1, r2); r != utf8.RuneError {
				return r, nil
			}
		}
	}
	return 0, d.errorf("unpaired UTF-16 surrogate in \\u escape")
}

func (d *doc) hex4() (rune, bool) {
	if d.pos+4 > len(d.in) {
		return 0, false
	}
	var r rune
	for _, c := range d.in[d.pos : d.pos+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	d.pos += 4
	return r, true
}

func (d *doc) array(depth int) (node, error) {
	if depth > maxDepth {
		return node{}, d.errorf("nesting deeper than %d levels", maxDepth)
	}
	d.pos++ // [
	mark := len(d.stack)
	d.skipSpace()
	if d.pos < len(d.in) && d.in[d.pos] == ']' {
		d.pos++
		return d.close(kArray, mark), nil
	}
	for {
		d.skipSpace()
		v, err := d.value(depth)
		if err != nil {
			return node{}, err
		}
		d.stack = append(d.stack, v)
		d.skipSpace()
		if d.pos >= len(d.in) {
			return node{}, d.errorf("unexpected end of input in array")
		}
		switch d.in[d.pos] {
		case ',':
			d.pos++
		case ']':
			d.pos++
			return d.close(kArray, mark), nil
		default:
			return node{}, d.errorf("invalid character %q after array element", d.in[d.pos])
		}
	}
}

func (d *doc) object(depth int) (node, error) {
	if depth > maxDepth {
		return node{}, d.errorf("nesting deeper than %d levels", maxDepth)
	}
	d.pos++ // {
	mark := len(d.stack)
	var seen map[string]struct{} // only for objects too large to scan
	d.skipSpace()
	if d.pos < len(d.in) && d.in[d.pos] == '}' {
		d.pos++
		return d.close(kObject, mark), nil
	}
	for {
		d.skipSpace()
		if d.pos >= len(d.in) || d.in[d.pos] != '"' {
			return node{}, d.errorf("expected a member name")
		}
		keyAt := d.pos
		key, err := d.string()
		if err != nil {
			return node{}, err
		}
		d.skipSpace()
		if d.pos >= len(d.in) || d.in[d.pos] != ':' {
			return node{}, d.errorf("expected ':' after member name")
		}
		d.pos++
		d.skipSpace()
		v, err := d.value(depth)
		if err != nil {
			return node{}, err
		}
		v.key = key
		if d.isDup(d.stack[mark:], &seen, key) {
			return node{}, &syntaxError{off: keyAt, msg: fmt.Sprintf("duplicate member name %q", key)}
		}
		d.stack = append(d.stack, v)
		d.skipSpace()
		if d.pos >= len(d.in) {
			return node{}, d.errorf("unexpected end of input in object")
		}
		switch d.in[d.pos] {
		case ',':
			d.pos++
		case '}':
			d.pos++
			return d.close(kObject, mark), nil
		default:
			return node{}, d.errorf("invalid character %q after object member", d.in[d.pos])
		}
	}
}

// scanMembers is the member count up to which duplicates are found by a
// linear scan; real objects are small, and a scan beats hashing there. Past
// it a set is built, so a hostile object with many members stays linear.
const scanMembers = 32

// isDup reports whether key is already among the members parsed so far.
func (d *doc) isDup(members []node, seen *map[string]struct{}, key string) bool {
	if len(members) < scanMembers {
		for i := range members {
			if members[i].key == key {
				return true
			}
		}
		return false
	}
	if *seen == nil {
		*seen = make(map[string]struct{}, 2*len(members))
		for i := range members {
			(*seen)[members[i].key] = struct{}{}
		}
	}
	if _, ok := (*seen)[key]; ok {
		return true
	}
	(*seen)[key] = struct{}{}
	return false
}

// close moves the children of the container opened at mark from the stack to
// their final contiguous place in d.nodes.
func (d *doc) close(k kind, mark int) node {
	first := len(d.nodes)
	d.nodes = append(d.nodes, d.stack[mark:]...)
	n := len(d.stack) - mark
	clear(d.stack[mark:])
	d.stack = d.stack[:mark]
	return node{kind: k, first: int32(first), n: int32(n)}
}
