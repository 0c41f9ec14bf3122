package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Structured documents the CLI reads from files (policies, bindings) are
// JSON or YAML. Both are parsed into a yaml.Node tree that carries the line
// and column of every key and value, checked against the Go type the
// server decodes them into (the same walk as the fleet document), and kept,
// so that a field error in the server's answer, located by JSON pointer,
// can be shown at its place in the file.

// maxDocFile bounds a policy or bindings document read from disk.
const maxDocFile = 1 << 20

// maxJSONDepth bounds the nesting of a JSON document; the walk is
// recursive, and no policy nests anywhere near this deep.
const maxJSONDepth = 200

// docFile is a checked document: its JSON form for the request and its
// node tree for locating the server's field errors.
type docFile struct {
	name string // as given by the user, for messages
	root *yaml.Node
	json json.RawMessage
}

// readDocFile reads the document at path (what names it in messages,
// e.g. "policy") and checks it strictly against t. A .json file is parsed
// as JSON, .yaml and .yml as YAML; any other name as JSON when it is valid
// JSON, else as YAML.
func readDocFile(path, what string, t reflect.Type) (*docFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", what, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxDocFile+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s %s: %w", what, path, err)
	}
	if len(data) > maxDocFile {
		return nil, fmt.Errorf("%s %s is larger than %d bytes", what, path, maxDocFile)
	}
	var isJSON bool
	switch strings.ToLower(filepath.Ext(path)) {
	case ".json":
		isJSON = true
	case ".yaml", ".yml":
	default:
		isJSON = json.Valid(data)
	}
	return parseDoc(path, what, data, isJSON, t)
}

// parseDoc parses and checks one document; every problem is reported as
// name:line:col, all of them at once.
func parseDoc(name, what string, data []byte, isJSON bool, t reflect.Type) (*docFile, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("%s: empty %s document", name, what)
	}
	var root *yaml.Node
	if isJSON {
		n, err := jsonNode(data)
		if err != nil {
			return nil, fmt.Errorf("%s:%v", name, err)
		}
		root = n
	} else {
		dec := yaml.NewDecoder(bytes.NewReader(data))
		var doc yaml.Node
		if err := dec.Decode(&doc); err != nil {
			if errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("%s: empty %s document", name, what)
			}
			return nil, yamlError(name, err)
		}
		var extra yaml.Node
		if err := dec.Decode(&extra); err == nil {
			return nil, (&collector{name: name}).at(&extra, "only one YAML document is allowed")
		}
		root = resolve(&doc)
		if root == nil || isNull(root) {
			return nil, fmt.Errorf("%s: empty %s document", name, what)
		}
	}
	c := &collector{name: name, json: isJSON}
	c.check(root, t, "")
	if err := c.err(); err != nil {
		return nil, err
	}
	var out []byte
	if isJSON {
		var b bytes.Buffer
		if err := json.Compact(&b, data); err != nil {
			return nil, fmt.Errorf("%s: %v", name, err)
		}
		out = b.Bytes()
	} else {
		var err error
		if out, err = json.Marshal(nodeToJSON(root, t)); err != nil {
			return nil, fmt.Errorf("%s: %v", name, err)
		}
	}
	// Backstop: what is sent must decode into t strictly, as the server
	// will decode it.
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(reflect.New(t).Interface()); err != nil {
		return nil, fmt.Errorf("%s: invalid %s: %v", name, what, err)
	}
	return &docFile{name: name, root: root, json: out}, nil
}

// jsonNode parses a JSON document into a yaml.Node tree with positions,
// tagged the way YAML would tag the values. Member names must be unique:
// encoding/json would silently keep the last one.
func jsonNode(data []byte) (*yaml.Node, error) {
	p := &jsonParser{dec: json.NewDecoder(bytes.NewReader(data)), data: data}
	p.dec.UseNumber()
	for i, c := range data {
		if c == '\n' {
			p.lines = append(p.lines, i+1)
		}
	}
	n, err := p.value(0)
	if err != nil {
		return nil, err
	}
	off := p.start()
	if _, err := p.dec.Token(); !errors.Is(err, io.EOF) {
		line, col := p.pos(off)
		return nil, fmt.Errorf("%d:%d: unexpected data after the JSON value", line, col)
	}
	return n, nil
}

type jsonParser struct {
	dec   *json.Decoder
	data  []byte
	lines []int // offsets at which lines 2, 3, ... start
}

// start is the offset of the next token: the decoder's offset past the
// separators it has not consumed yet.
func (p *jsonParser) start() int64 {
	off := p.dec.InputOffset()
	for off < int64(len(p.data)) && strings.IndexByte(" \t\r\n,:", p.data[off]) >= 0 {
		off++
	}
	return off
}

func (p *jsonParser) pos(off int64) (line, col int) {
	i := sort.SearchInts(p.lines, int(off)+1)
	lineStart := 0
	if i > 0 {
		lineStart = p.lines[i-1]
	}
	return i + 1, int(off) - lineStart + 1
}

func (p *jsonParser) fail(off int64, err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		off = se.Offset
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		err = errors.New("unexpected end of JSON input")
	}
	line, col := p.pos(off)
	return fmt.Errorf("%d:%d: %v", line, col, err)
}

func (p *jsonParser) value(depth int) (*yaml.Node, error) {
	off := p.start()
	tok, err := p.dec.Token()
	if err != nil {
		return nil, p.fail(off, err)
	}
	line, col := p.pos(off)
	n := &yaml.Node{Kind: yaml.ScalarNode, Line: line, Column: col}
	switch v := tok.(type) {
	case json.Delim:
		if depth >= maxJSONDepth {
			return nil, fmt.Errorf("%d:%d: nested deeper than %d levels", line, col, maxJSONDepth)
		}
		if v == '[' {
			n.Kind, n.Tag, n.Style = yaml.SequenceNode, "!!seq", yaml.FlowStyle
			for p.dec.More() {
				e, err := p.value(depth + 1)
				if err != nil {
					return nil, err
				}
				n.Content = append(n.Content, e)
			}
		} else {
			n.Kind, n.Tag, n.Style = yaml.MappingNode, "!!map", yaml.FlowStyle
			seen := map[string]int{}
			for p.dec.More() {
				koff := p.start()
				kt, err := p.dec.Token()
				if err != nil {
					return nil, p.fail(koff, err)
				}
				k, _ := kt.(string)
				kl, kc := p.pos(koff)
				if first, dup := seen[k]; dup {
					return nil, fmt.Errorf("%d:%d: member %q is given twice (first on line %d)", kl, kc, k, first)
				}
				seen[k] = kl
				val, err := p.value(depth + 1)
				if err != nil {
					return nil, err
				}
				key := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Style: yaml.DoubleQuotedStyle, Value: k, Line: kl, Column: kc}
				n.Content = append(n.Content, key, val)
			}
		}
		if _, err := p.dec.Token(); err != nil { // the closing delimiter
			return nil, p.fail(p.start(), err)
		}
	case string:
		n.Tag, n.Value, n.Style = "!!str", v, yaml.DoubleQuotedStyle
	case json.Number:
		n.Tag, n.Value = "!!int", v.String()
		if strings.ContainsAny(n.Value, ".eE") {
			n.Tag = "!!float"
		}
	case bool:
		n.Tag, n.Value = "!!bool", strconv.FormatBool(v)
	case nil:
		n.Tag, n.Value = "!!null", "null"
	}
	return n, nil
}

// nodeAt follows a JSON pointer from n through mappings and sequences and
// returns the node to report a problem at: the key of a member (where its
// line starts), the item of a list. When the pointer leads out of the
// document, the deepest node reached is returned.
func nodeAt(n *yaml.Node, ptr string) *yaml.Node {
	at := resolve(n)
	if ptr == "" {
		return at
	}
	cur := at
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		cur = resolve(cur)
		if cur == nil {
			return at
		}
		switch cur.Kind {
		case yaml.MappingNode:
			var next *yaml.Node
			for i := 0; i+1 < len(cur.Content); i += 2 {
				if cur.Content[i].Value == tok && cur.Content[i].Tag != "!!merge" {
					at, next = cur.Content[i], cur.Content[i+1]
				}
			}
			if next == nil {
				return at
			}
			cur = next
		case yaml.SequenceNode:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(cur.Content) {
				return at
			}
			at = cur.Content[i]
			cur = at
		default:
			return at
		}
	}
	return at
}

// locator maps the JSON pointer of a field error to a file position
// ("policy.yaml:12:9"), or "" when the pointer is not in a file.
type locator func(ptr string) string

// within locates the pointers below prefix in document d.
func (d *docFile) within(prefix string) locator {
	return func(ptr string) string {
		if d == nil || (ptr != prefix && !strings.HasPrefix(ptr, prefix+"/")) {
			return ""
		}
		return fmtPos(d.name, nodeAt(d.root, strings.TrimPrefix(ptr, prefix)))
	}
}

func fmtPos(name string, n *yaml.Node) string {
	if n == nil || n.Line == 0 {
		return name
	}
	return fmt.Sprintf("%s:%d:%d", name, n.Line, n.Column)
}

// locateProblem sets the file position of the field errors of a problem
// answer that the locators place; other errors are returned as they are.
func locateProblem(err error, locs ...locator) error {
	var pe *ProblemError
	if !errors.As(err, &pe) {
		return err
	}
	for i := range pe.Errors {
		for _, loc := range locs {
			if at := loc(pe.Errors[i].Pointer); at != "" {
				pe.Errors[i].At = at
				break
			}
		}
	}
	return err
}
