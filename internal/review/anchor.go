package review

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/spec"
	"github.com/fleetgate/fleetgate/internal/spec/yamlx"
)

// Bounds of a comment anchor: pointers name places in a document that is
// itself bounded in depth; anything longer is not a real location.
const (
	MaxPointerLen    = 1024
	MaxPointerTokens = 64
)

// ParsePointer splits an RFC 6901 JSON pointer into its unescaped
// reference tokens. It is strict: a pointer must start with '/', '~' must
// be followed by '0' or '1' (RFC 6901 section 3), and control characters
// and invalid UTF-8 are refused, since a comment anchor is shown to other
// operators. "" (the whole document) gives no tokens.
func ParsePointer(s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	if len(s) > MaxPointerLen {
		return nil, fmt.Errorf("longer than %d bytes", MaxPointerLen)
	}
	if !utf8.ValidString(s) {
		return nil, errors.New("not valid UTF-8")
	}
	if s[0] != '/' {
		return nil, errors.New("must be empty or start with '/' (RFC 6901)")
	}
	raw := strings.Split(s[1:], "/")
	if len(raw) > MaxPointerTokens {
		return nil, fmt.Errorf("more than %d reference tokens", MaxPointerTokens)
	}
	out := make([]string, len(raw))
	for i, tok := range raw {
		for j := 0; j < len(tok); j++ {
			if tok[j] == '~' && (j+1 == len(tok) || (tok[j+1] != '0' && tok[j+1] != '1')) {
				return nil, fmt.Errorf("token %d: '~' must be followed by 0 or 1 (RFC 6901 section 3)", i+1)
			}
		}
		if strings.IndexFunc(tok, unicode.IsControl) >= 0 {
			return nil, fmt.Errorf("token %d: control characters are not allowed", i+1)
		}
		// ~1 first, then ~0, so that "~01" is "~1" (RFC 6901 section 4).
		out[i] = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
	}
	return out, nil
}

// FormatPointer is the inverse of ParsePointer.
func FormatPointer(tokens []string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		b.WriteString(strings.ReplaceAll(strings.ReplaceAll(t, "~", "~0"), "/", "~1"))
	}
	return b.String()
}

// Locate finds the node tokens name in doc and returns its line (of the
// mapping key when there is one) and column; ok is false when nothing is
// there. $refs are not followed: a comment is about the text a reviewer
// reads, not what it refers to.
func Locate(doc *spec.Document, tokens []string) (line, col int, ok bool) {
	t := yamlx.NewTree(doc.Root())
	cur := yamlx.Loc{Node: t.Root}
	for _, tok := range tokens {
		n := yamlx.Deref(cur.Node)
		switch {
		case n == nil:
			return 0, 0, false
		case n.Kind == yaml.MappingNode:
			if cur = t.At(cur, tok); !cur.Valid() {
				return 0, 0, false
			}
		case n.Kind == yaml.SequenceNode:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(n.Content) || (len(tok) > 1 && tok[0] == '0') {
				return 0, 0, false
			}
			cur = yamlx.Loc{Node: yamlx.Deref(n.Content[i])}
		default:
			return 0, 0, false
		}
	}
	line, col = cur.Line()
	return line, col, cur.Valid()
}

// HasOperation reports whether v declares an operation with this id on any
// protocol binding.
func HasOperation(v *model.Version, id string) bool {
	if h := v.Bindings.HTTP; h != nil {
		for _, op := range h.Operations {
			if op.OperationID == id {
				return true
			}
		}
	}
	if m := v.Bindings.MQTT; m != nil {
		for _, c := range m.Channels {
			if c.OperationID == id {
				return true
			}
		}
	}
	return false
}
