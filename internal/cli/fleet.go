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

	"github.com/fleetgate/fleetgate/internal/model"
)

// The fleet document is what `fleetgate apply` reads: the desired tenants,
// APIs and versions. It is sent to the server as JSON with spec_file and
// policy_file replaced by the files' content, so the server never reads
// client paths.
type fleetDoc struct {
	Tenants []fleetTenant `yaml:"tenants" json:"tenants,omitempty"`
	APIs    []fleetAPI    `yaml:"apis" json:"apis,omitempty"`

	// name and root locate the server's field errors in the document.
	name string
	root *yaml.Node
}

type fleetTenant struct {
	ID          string `yaml:"id" json:"id"`
	DisplayName string `yaml:"display_name" json:"display_name,omitempty"`
}

type fleetAPI struct {
	Name        string         `yaml:"name" json:"name"`
	Tenant      string         `yaml:"tenant" json:"tenant,omitempty"`
	Owner       string         `yaml:"owner" json:"owner"`
	DisplayName string         `yaml:"display_name" json:"display_name,omitempty"`
	Description string         `yaml:"description" json:"description,omitempty"`
	Versions    []fleetVersion `yaml:"versions" json:"versions,omitempty"`
}

type fleetVersion struct {
	Version  string         `yaml:"version" json:"version"`
	Upstream *fleetUpstream `yaml:"upstream" json:"upstream,omitempty"`
	// BindingsNode keeps the YAML so that it can be checked against
	// model.Bindings and converted using that type's JSON member names;
	// Bindings is the result that is sent.
	BindingsNode yaml.Node       `yaml:"bindings" json:"-" schema:"bindings"`
	Bindings     json.RawMessage `yaml:"-" json:"bindings,omitempty"`
	SpecFile     string          `yaml:"spec_file" json:"-"`
	Spec         string          `yaml:"spec" json:"spec,omitempty"`
	// The policy is given inline (PolicyNode, checked against
	// model.Policy like bindings) or as policy_file, JSON or YAML,
	// relative to the document's directory; Policy is what is sent.
	PolicyNode yaml.Node       `yaml:"policy" json:"-" schema:"policy"`
	PolicyFile string          `yaml:"policy_file" json:"-"`
	Policy     json.RawMessage `yaml:"-" json:"policy,omitempty"`

	// node is the version's item in the document; policyDoc the policy
	// file, when there is one.
	node      *yaml.Node
	policyDoc *docFile
}

type fleetUpstream struct {
	Targets []string `yaml:"targets" json:"targets,omitempty"`
}

// maxFleetErrors caps the problems reported at once; past that the file is
// likely not a fleet document at all.
const maxFleetErrors = 20

var (
	yamlNodeType = reflect.TypeOf(yaml.Node{})
	bindingsType = reflect.TypeOf(model.Bindings{})
	policyType   = reflect.TypeOf(model.Policy{})
	// schemaTypes are what yaml.Node fields tagged schema:"..." are
	// checked against.
	schemaTypes = map[string]reflect.Type{"bindings": bindingsType, "policy": policyType}
)

// loadFleet reads a fleet document from path ("-": stdin, with spec_file
// relative to the working directory).
func loadFleet(path string, stdin io.Reader) (*fleetDoc, error) {
	var data []byte
	var err error
	name, dir := path, filepath.Dir(path)
	if path == "-" {
		name, dir = "stdin", "."
		data, err = io.ReadAll(io.LimitReader(stdin, maxSpecFile*4))
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("reading fleet document: %w", err)
	}
	return parseFleet(name, dir, data)
}

// parseFleet decodes a fleet document strictly. Every problem is reported
// as file:line:col, all of them at once, so a long file is fixed in one
// round: unknown keys (typos would otherwise be silently ignored and the
// server would apply a different fleet than the author meant), wrong
// shapes, duplicates and unreadable spec files.
func parseFleet(name, dir string, data []byte) (*fleetDoc, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlError(name, err)
	}
	if root.Kind == 0 || len(root.Content) == 0 {
		return nil, fmt.Errorf("%s: empty document", name)
	}
	top := root.Content[0]
	c := &collector{name: name}
	c.check(top, reflect.TypeOf(fleetDoc{}), "")
	if err := c.err(); err != nil {
		return nil, err
	}

	// The schema walk has vetted keys and shapes; the decoder (strict too,
	// as a backstop) now fills the structs and reports scalar type errors.
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var doc fleetDoc
	if err := dec.Decode(&doc); err != nil {
		return nil, yamlError(name, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, c.at(&extra, "only one YAML document is allowed")
	}

	doc.name, doc.root = name, top
	if len(doc.Tenants) == 0 && len(doc.APIs) == 0 {
		return nil, c.at(top, "the document declares no tenants and no apis")
	}
	tenantsNode := mapValue(top, "tenants")
	seenTenants := map[string]bool{}
	for i, t := range doc.Tenants {
		n := seqItem(tenantsNode, i, top)
		switch {
		case t.ID == "":
			c.add(n, "tenants[%d]: id is required", i)
		case seenTenants[t.ID]:
			c.add(n, "tenant %q is declared twice", t.ID)
		}
		seenTenants[t.ID] = true
	}
	apisNode := mapValue(top, "apis")
	seenAPIs := map[string]bool{}
	for i := range doc.APIs {
		api := &doc.APIs[i]
		an := seqItem(apisNode, i, top)
		key := api.Tenant + "/" + api.Name
		switch {
		case api.Name == "":
			c.add(an, "apis[%d]: name is required", i)
		case seenAPIs[key]:
			c.add(an, "api %q is declared twice", strings.TrimPrefix(key, "/"))
		}
		seenAPIs[key] = true
		versionsNode := mapValue(an, "versions")
		seenVersions := map[string]bool{}
		for j := range api.Versions {
			c.version(dir, api, &api.Versions[j], seqItem(versionsNode, j, an), seenVersions)
		}
	}
	if err := c.err(); err != nil {
		return nil, err
	}
	return &doc, nil
}

// version checks one version, reads its spec_file and converts its bindings.
func (c *collector) version(dir string, api *fleetAPI, v *fleetVersion, n *yaml.Node, seen map[string]bool) {
	where := api.Name + "/" + v.Version
	switch {
	case v.Version == "":
		c.add(n, "a version of api %q has no version label", api.Name)
	case seen[v.Version]:
		c.add(n, "version %s is declared twice", where)
	}
	seen[v.Version] = true
	if v.SpecFile != "" && v.Spec != "" {
		c.add(n, "version %s: give spec_file or spec, not both", where)
	}
	if v.SpecFile != "" {
		fn := mapValue(n, "spec_file")
		p := v.SpecFile
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		switch data, err := os.ReadFile(p); {
		case err != nil:
			c.add(fn, "spec_file: %v", err)
		case len(data) > maxSpecFile:
			c.add(fn, "spec_file %s is larger than %d bytes", p, maxSpecFile)
		case len(bytes.TrimSpace(data)) == 0:
			c.add(fn, "spec_file %s is empty", p)
		default:
			v.Spec, v.SpecFile = string(data), ""
		}
	}
	if bn := &v.BindingsNode; bn.Kind != 0 && !isNull(bn) {
		// Checked by the schema walk already; only converted here.
		raw, err := json.Marshal(nodeToJSON(bn, bindingsType))
		if err != nil {
			c.add(bn, "bindings: %v", err)
		}
		v.Bindings = raw
	}
	v.node = n
	pn := &v.PolicyNode
	hasInline := pn.Kind != 0 && !isNull(pn)
	switch {
	case hasInline && v.PolicyFile != "":
		c.add(n, "version %s: give policy_file or policy, not both", where)
	case hasInline:
		raw, err := json.Marshal(nodeToJSON(pn, policyType))
		if err != nil {
			c.add(pn, "policy: %v", err)
		}
		v.Policy = raw
	case v.PolicyFile != "":
		p := v.PolicyFile
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		d, err := readDocFile(p, "policy", policyType)
		if err != nil {
			var pe *os.PathError
			if errors.As(err, &pe) {
				c.add(mapValue(n, "policy_file"), "policy_file: %v", pe)
				return
			}
			// Already located in the policy file.
			if len(c.errs) < maxFleetErrors {
				c.errs = append(c.errs, err)
			}
			return
		}
		v.Policy, v.policyDoc, v.PolicyFile = d.json, d, ""
	}
}

// locate places a field error of the server's answer to this document:
// "/apis/0/versions/1/policy/rules/0" in the policy file when the version
// has one, everything else in the document itself.
func (d *fleetDoc) locate(ptr string) string {
	if d.root == nil || ptr == "" || !strings.HasPrefix(ptr, "/") {
		return ""
	}
	toks := strings.SplitN(strings.TrimPrefix(ptr, "/"), "/", 6)
	if len(toks) >= 5 && toks[0] == "apis" && toks[2] == "versions" {
		i, err1 := strconv.Atoi(toks[1])
		j, err2 := strconv.Atoi(toks[3])
		if err1 == nil && err2 == nil && i >= 0 && i < len(d.APIs) && j >= 0 && j < len(d.APIs[i].Versions) {
			v := &d.APIs[i].Versions[j]
			switch {
			case toks[4] == "policy" && v.policyDoc != nil:
				if len(toks) == 5 {
					return fmtPos(d.name, mapValue(v.node, "policy_file"))
				}
				return v.policyDoc.within("")("/" + toks[5])
			case toks[4] == "spec" && mapValue(v.node, "spec_file") != nil:
				return fmtPos(d.name, nodeAt(v.node, "/spec_file"))
			}
		}
	}
	return fmtPos(d.name, nodeAt(d.root, ptr))
}

// yamlError reformats a yaml.v3 error as "name:line: message", one line
// per problem, the way compilers report positions.
func yamlError(name string, err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return fmt.Errorf("%s", located(name, strings.TrimPrefix(err.Error(), "yaml: ")))
	}
	errs := make([]error, len(te.Errors))
	for i, e := range te.Errors {
		if j := strings.Index(e, " in type "); j >= 0 && strings.Contains(e, " not found") {
			e = e[:j] // the Go type name means nothing to the user
		}
		errs[i] = fmt.Errorf("%s", located(name, e))
	}
	return errors.Join(errs...)
}

// located turns "line 3: msg" into "name:3: msg".
func located(name, msg string) string {
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if n, tail, ok := strings.Cut(rest, ": "); ok && strings.Trim(n, "0123456789") == "" {
			return name + ":" + n + ": " + tail
		}
	}
	return name + ": " + msg
}

// collector gathers located errors.
type collector struct {
	name string
	errs []error
	// json: the document was JSON, where a string field takes a string
	// only (in YAML an unquoted 1.0 is kept as the text "1.0").
	json bool
}

func (c *collector) at(n *yaml.Node, msg string) error {
	if n == nil || n.Line == 0 {
		return fmt.Errorf("%s: %s", c.name, msg)
	}
	return fmt.Errorf("%s:%d:%d: %s", c.name, n.Line, n.Column, msg)
}

func (c *collector) add(n *yaml.Node, format string, args ...any) {
	if len(c.errs) < maxFleetErrors {
		c.errs = append(c.errs, c.at(n, fmt.Sprintf(format, args...)))
	}
}

func (c *collector) err() error { return errors.Join(c.errs...) }

// check walks node n against Go type t: mappings must use known keys (the
// yaml tag, else the json tag, so model types check by their JSON names),
// lists must be sequences and scalars scalars. yaml.Node fields are checked
// against their schema tag's type, or not at all.
func (c *collector) check(n *yaml.Node, t reflect.Type, where string) {
	n = resolve(n)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n == nil || t == yamlNodeType || isNull(n) {
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			c.add(n, "%s must be a mapping, not %s", what(where), kindName(n))
			return
		}
		fields := fieldTypes(t)
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Tag == "!!merge" {
				c.check(v, t, where)
				continue
			}
			ft, ok := fields[k.Value]
			if !ok {
				c.add(k, "unknown field %q in %s (known: %s)", k.Value, what(where), strings.Join(sortedKeys(fields), ", "))
				continue
			}
			c.unique(seen, k, where)
			c.check(v, ft, strings.TrimPrefix(where+"."+k.Value, "."))
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			c.add(n, "%s must be a mapping, not %s", what(where), kindName(n))
			return
		}
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Tag == "!!merge" {
				c.check(v, t, where)
				continue
			}
			if k.Kind != yaml.ScalarNode {
				c.add(k, "the keys of %s must be single values", what(where))
				continue
			}
			c.unique(seen, k, where)
			c.check(v, t.Elem(), where+"["+strconv.Quote(k.Value)+"]")
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			if n.Kind == yaml.MappingNode && t.Elem().Kind() == reflect.Struct {
				c.add(n, "%s must be a list (start each item with \"- \")", where)
			} else {
				c.add(n, "%s must be a list, not %s", where, kindName(n))
			}
			return
		}
		for i, e := range n.Content {
			c.check(e, t.Elem(), fmt.Sprintf("%s[%d]", where, i))
		}
	default:
		if n.Kind != yaml.ScalarNode {
			c.add(n, "%s must be a single value, not %s", where, kindName(n))
			return
		}
		c.scalar(n, t, where)
	}
}

// scalar checks that a single value fits a field of type t: numbers for
// numbers, booleans for booleans, and in JSON strings for strings.
func (c *collector) scalar(n *yaml.Node, t reflect.Type, where string) {
	switch t.Kind() {
	case reflect.String:
		if c.json && n.Tag != "!!str" {
			c.add(n, "%s must be a string, not %s", where, n.Value)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if n.Tag != "!!int" || n.Decode(reflect.New(t).Interface()) != nil {
			c.add(n, "%s must be a whole number, not %s", where, quoteValue(n))
		}
	case reflect.Float32, reflect.Float64:
		if (n.Tag != "!!int" && n.Tag != "!!float") || n.Decode(reflect.New(t).Interface()) != nil {
			c.add(n, "%s must be a number, not %s", where, quoteValue(n))
		}
	case reflect.Bool:
		if n.Tag != "!!bool" {
			c.add(n, "%s must be true or false, not %s", where, quoteValue(n))
		}
	}
}

func quoteValue(n *yaml.Node) string {
	if n.Tag == "!!str" {
		return strconv.Quote(n.Value)
	}
	return n.Value
}

// unique reports a key given twice in one mapping: decoders keep one of
// the values silently.
func (c *collector) unique(seen map[string]int, k *yaml.Node, where string) {
	if first, dup := seen[k.Value]; dup {
		c.add(k, "%q is given twice in %s (first on line %d)", k.Value, what(where), first)
		return
	}
	seen[k.Value] = k.Line
}

// what names a location for a message; "" is the top level.
func what(where string) string {
	if where == "" {
		return "the document"
	}
	return where
}

// fieldTypes maps the YAML keys of struct type t to field types.
func fieldTypes(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" {
			name, _, _ = strings.Cut(f.Tag.Get("json"), ",")
		}
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		if st, ok := schemaTypes[f.Tag.Get("schema")]; ok {
			out[name] = st
			continue
		}
		out[name] = f.Type
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// nodeToJSON converts a checked node to a JSON-ready value, led by t: string
// fields keep the YAML text verbatim (an unquoted 1.0 or 0123 stays as
// written, rather than becoming a number), member names come from json tags.
func nodeToJSON(n *yaml.Node, t reflect.Type) any {
	n = resolve(n)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n == nil || isNull(n) {
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		fields := fieldTypes(t)
		out := map[string]any{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Tag == "!!merge" {
				if m, ok := nodeToJSON(v, t).(map[string]any); ok {
					for mk, mv := range m {
						if _, set := out[mk]; !set {
							out[mk] = mv
						}
					}
				}
				continue
			}
			out[k.Value] = nodeToJSON(v, fields[k.Value])
		}
		return out
	case reflect.Map:
		out := map[string]any{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Tag == "!!merge" {
				if m, ok := nodeToJSON(v, t).(map[string]any); ok {
					for mk, mv := range m {
						if _, set := out[mk]; !set {
							out[mk] = mv
						}
					}
				}
				continue
			}
			out[k.Value] = nodeToJSON(v, t.Elem())
		}
		return out
	case reflect.Slice:
		out := make([]any, 0, len(n.Content))
		for _, e := range n.Content {
			out = append(out, nodeToJSON(e, t.Elem()))
		}
		return out
	case reflect.String:
		return n.Value
	}
	var v any
	_ = n.Decode(&v)
	return v
}

func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n != nil && n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		return resolve(n.Content[0])
	}
	return n
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return "a single value"
	}
	return "something else"
}

// mapValue returns the value of key in mapping n, or nil.
func mapValue(n *yaml.Node, key string) *yaml.Node {
	n = resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// seqItem returns item i of sequence n, or fallback (for positions only).
func seqItem(n *yaml.Node, i int, fallback *yaml.Node) *yaml.Node {
	n = resolve(n)
	if n == nil || n.Kind != yaml.SequenceNode || i >= len(n.Content) {
		return fallback
	}
	return n.Content[i]
}
