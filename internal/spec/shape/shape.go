// Package shape fingerprints the operations of an API description by what
// they exchange rather than by where they live: the method (or MQTT
// action), the parameters, and the request, response and message schemas,
// with the names of path and channel parameters erased and $refs followed.
// Two operations with one fingerprint under different paths or topics are
// near-duplicates: the same capability published twice under two names,
// which governance reports as a review warning.
//
// Like lint, shape does no I/O, tolerates any Document spec.Parse accepted,
// and bounds its work: a hostile document yields truncated fingerprints,
// never a hang.
package shape

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/fleetgate/fleetgate/internal/spec"
	"github.com/fleetgate/fleetgate/internal/spec/yamlx"
)

// Op is the shape of one operation.
type Op struct {
	Protocol string `json:"protocol"` // "http" or "mqtt"
	// Action is the HTTP method, or the MQTT action ("publish": the
	// device sends; "subscribe").
	Action      string `json:"action"`
	Path        string `json:"path"` // the template as written (OpenAPI: below the base path)
	OperationID string `json:"operation_id,omitempty"`
	// Fingerprint identifies the shape; "" when the operation exchanges
	// no schema at all (a bare GET /health): such operations all look
	// alike, so comparing them would only produce noise.
	Fingerprint string `json:"fingerprint,omitempty"`
}

// Label names the operation for people: its operationId, else its
// action and path.
func (o Op) Label() string {
	if o.OperationID != "" {
		return o.OperationID + " (" + o.Action + " " + o.Path + ")"
	}
	return o.Action + " " + o.Path
}

// budget bounds the nodes visited per document.
const budget = 200_000

// maxDepth bounds schema nesting in a fingerprint.
const maxDepth = 32

var httpMethods = [...]string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// annotations are schema and parameter keywords that do not change what
// is exchanged.
var annotations = map[string]bool{"description": true, "title": true, "summary": true, "example": true, "examples": true,
	"externalDocs": true, "deprecated": true, "$comment": true}

type walker struct {
	t    *yamlx.Tree
	left int
}

// Of lists the operations of doc with their shapes, in document order.
func Of(doc *spec.Document) []Op {
	root := doc.Root()
	if root == nil {
		return nil
	}
	w := &walker{t: yamlx.NewTree(root), left: budget}
	if doc.Format == spec.FormatAsyncAPI {
		if strings.HasPrefix(doc.Version, "2.") {
			return w.async2()
		}
		return w.async3()
	}
	return w.openapi()
}

func (w *walker) step() bool {
	w.left--
	return w.left >= 0
}

func (w *walker) openapi() []Op {
	var out []Op
	seen := map[*yaml.Node]bool{}
	keys, items := yamlx.Fields(w.t.At(yamlx.Loc{Node: w.t.Root}, "paths"))
	for i, path := range keys {
		if !strings.HasPrefix(path, "/") {
			continue
		}
		var done uint8
		var chain []*yaml.Node
		for item := items[i]; item.Valid() && yamlx.IsMap(item.Node) && !slices.Contains(chain, item.Node) && len(chain) <= yamlx.MaxRefHops; {
			chain = append(chain, item.Node)
			for mi, m := range httpMethods {
				op := w.t.At(item, m)
				if done&(1<<mi) != 0 || !yamlx.IsMap(op.Node) || seen[op.Node] {
					continue
				}
				done |= 1 << mi
				seen[op.Node] = true
				out = append(out, w.httpOp(path, strings.ToUpper(m), item, op))
			}
			ref, ok := yamlx.Str(w.t.Val(item.Node, "$ref"))
			if !ok {
				break
			}
			item = w.t.Resolve(ref)
		}
	}
	return out
}

// httpOp fingerprints one Operation: path parameters by position, other
// parameters by location and name, bodies by media type, responses by
// status code.
func (w *walker) httpOp(path, method string, item, op yamlx.Loc) Op {
	id, _ := yamlx.Str(w.t.Val(op.Node, "operationId"))
	o := Op{Protocol: "http", Action: method, Path: path, OperationID: id}
	params := map[string]string{} // in:name -> canonical
	for _, list := range [...]yamlx.Loc{w.t.At(op, "parameters"), w.t.At(item, "parameters")} {
		for _, p := range yamlx.Elems(list) {
			p = w.t.Follow(p)
			in, _ := yamlx.Str(w.t.Val(p.Node, "in"))
			name, _ := yamlx.Str(w.t.Val(p.Node, "name"))
			if _, own := params[in+":"+name]; !own { // the operation's own win
				params[in+":"+name] = w.canon(p.Node, 0, nil, "name", "in")
			}
		}
	}
	var parts []string
	parts = append(parts, "http", method)
	for i, name := range yamlx.TemplateNames(path) {
		parts = append(parts, "path#"+itoa(i)+"="+params["path:"+name])
		delete(params, "path:"+name)
	}
	schemas := 0
	for _, k := range sortedKeys(params) {
		parts = append(parts, k+"="+params[k])
	}
	body := w.t.Follow(w.t.At(op, "requestBody"))
	if c, n := w.content(w.t.At(body, "content")); n > 0 {
		req, _ := yamlx.Str(w.t.Val(body.Node, "required"))
		parts = append(parts, "body"+req+"="+c)
		schemas += n
	}
	codes, resps := yamlx.Fields(w.t.At(op, "responses"))
	var rs []string
	for i, code := range codes {
		c, n := w.content(w.t.At(w.t.Follow(resps[i]), "content"))
		if n > 0 {
			rs = append(rs, code+"="+c)
			schemas += n
		}
	}
	sort.Strings(rs)
	parts = append(parts, rs...)
	if schemas > 0 {
		o.Fingerprint = digest(parts)
	}
	return o
}

// content fingerprints a content map (media type -> Media Type object) and
// counts its schemas.
func (w *walker) content(c yamlx.Loc) (string, int) {
	types, medias := yamlx.Fields(c)
	var out []string
	n := 0
	for i, mt := range types {
		s := w.t.At(medias[i], "schema")
		if !s.Valid() {
			continue
		}
		n++
		out = append(out, strings.ToLower(mt)+":"+w.canon(s.Node, 0, nil))
	}
	sort.Strings(out)
	return strings.Join(out, ";"), n
}

// canon renders n canonically: $refs followed, mappings with sorted keys
// and without annotations, sequences sorted (the order of enum, required,
// allOf... members does not change a shape). skip names further keys to
// leave out at the top level.
func (w *walker) canon(n *yaml.Node, depth int, stack []*yaml.Node, skip ...string) string {
	n = yamlx.Deref(n)
	if n == nil || !w.step() {
		return "…"
	}
	if depth > maxDepth || slices.Contains(stack, n) {
		return "↺"
	}
	switch n.Kind {
	case yaml.ScalarNode:
		return n.ShortTag() + ":" + n.Value
	case yaml.SequenceNode:
		stack = append(stack, n)
		items := make([]string, 0, len(n.Content))
		for _, c := range n.Content {
			items = append(items, w.canon(c, depth+1, stack))
		}
		sort.Strings(items)
		return "[" + strings.Join(items, ",") + "]"
	case yaml.MappingNode:
		if ref, ok := yamlx.Str(w.t.Val(n, "$ref")); ok {
			if target := w.t.Resolve(ref); target.Valid() {
				return w.canon(target.Node, depth+1, append(stack, n))
			}
			return "ref:" + ref
		}
		stack = append(stack, n)
		var fields []string
		for _, e := range yamlx.Entries(n) {
			if annotations[e.Key] || strings.HasPrefix(e.Key, "x-") || slices.Contains(skip, e.Key) {
				continue
			}
			fields = append(fields, e.Key+"="+w.canon(e.V, depth+1, stack))
		}
		sort.Strings(fields)
		return "{" + strings.Join(fields, ",") + "}"
	}
	return "?"
}

func digest(parts []string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}
