package spec

import (
	"errors"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/fleetgate/fleetgate/internal/model"
)

// httpMethods are the operation fields of an OpenAPI Path Item, in the order
// the specification lists them.
var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// coapSchemes are the URI schemes of CoAP (RFC 7252, RFC 8323). An OpenAPI
// document whose first server uses one describes CoAP resources, not HTTP.
var coapSchemes = map[string]bool{
	"coap": true, "coaps": true,
	"coap+tcp": true, "coaps+tcp": true,
	"coap+ws": true, "coaps+ws": true,
}

// coapMethods are the OpenAPI operations that exist in CoAP; HEAD, OPTIONS
// and TRACE do not.
var coapMethods = map[string]bool{"GET": true, "POST": true, "PUT": true, "DELETE": true, "PATCH": true}

// maxRefHops bounds chains of Reference Objects (a path item that refers to
// one that refers to another...). Real documents use one hop.
const maxRefHops = 16

// maxOperations caps the operations (or, in AsyncAPI, channel actions) one
// document may bind. $refs are not expanded by the walker, so without this
// many paths referring to one path item could bind millions of routes from
// a small document; real APIs have hundreds.
const maxOperations = 100_000

// openapiChecker checks the parts of an OpenAPI document that Bindings and
// the data plane rely on. The memo sets make shared objects (via $ref or
// YAML aliases) cost once, and make reference cycles terminate.
type openapiChecker struct {
	r     *resolver
	items map[*yaml.Node]bool
	opIDs map[string]*yaml.Node
}

// checkOpenAPI checks servers, paths and (3.1) webhooks.
func checkOpenAPI(root *yaml.Node, v30 bool, r *resolver) *Error {
	if e := checkServers(root); e != nil {
		return e
	}
	c := &openapiChecker{r: r, items: map[*yaml.Node]bool{}, opIDs: map[string]*yaml.Node{}}
	ops := 0
	pk, paths := lookup(root, "paths")
	switch {
	case pk == nil && v30:
		return errAt("", root, "\"paths\" is required in OpenAPI 3.0")
	case pk == nil:
		wk, _ := lookup(root, "webhooks")
		ck, _ := lookup(root, "components")
		if wk == nil && ck == nil {
			return errAt("", root, "OpenAPI 3.1 requires at least one of \"paths\", \"webhooks\" or \"components\"")
		}
	case !isMapping(paths):
		return errAt("/paths", nodeOr(paths, pk), "paths must be a mapping")
	}
	for _, en := range entries(paths) {
		ptr := child("/paths", en.key)
		if strings.HasPrefix(en.key, "x-") {
			continue // specification extension, not a path
		}
		if !strings.HasPrefix(en.key, "/") {
			return errAt(ptr, en.k, "path %q must start with \"/\"", clip(en.key))
		}
		if p := templateProblem(en.key); p != "" {
			return errAt(ptr, en.k, "path template %q: %s", clip(en.key), p)
		}
		if e := c.pathItem(en.v, ptr, 0); e != nil {
			return e
		}
		pathOperations(r, en.v, func(string, *yaml.Node) { ops++ })
		if ops > maxOperations {
			return errAt(ptr, en.k, "document describes more than %d operations", maxOperations)
		}
	}
	if v30 {
		return nil
	}
	wk, hooks := lookup(root, "webhooks")
	if wk != nil && !isMapping(hooks) {
		return errAt("/webhooks", nodeOr(hooks, wk), "webhooks must be a mapping")
	}
	for _, en := range entries(hooks) {
		if e := c.pathItem(en.v, child("/webhooks", en.key), 0); e != nil {
			return e
		}
	}
	return nil
}

// pathItem checks a Path Item and, if it is a reference, its target.
func (c *openapiChecker) pathItem(item *yaml.Node, ptr string, hops int) *Error {
	item = deref(item)
	if item == nil || item.Kind != yaml.MappingNode {
		return errAt(ptr, item, "path item must be a mapping")
	}
	if c.items[item] {
		return nil
	}
	c.items[item] = true
	for _, m := range httpMethods {
		if k, op := lookup(item, m); k != nil {
			if e := c.operation(op, child(ptr, m), k); e != nil {
				return e
			}
		}
	}
	rk, rv := lookup(item, "$ref")
	if rk == nil {
		return nil
	}
	target, tptr := c.r.ref(refString(rv))
	if !isMapping(target) {
		return errAt(child(ptr, "$ref"), nodeOr(rv, rk), "a path item $ref must be a JSON pointer (\"#/...\") to a path item")
	}
	if hops >= maxRefHops {
		return errAt(child(ptr, "$ref"), nodeOr(rv, rk), "more than %d chained $refs", maxRefHops)
	}
	return c.pathItem(target, tptr, hops+1)
}

// operation checks an Operation: a mapping, with mapping responses and a
// unique string operationId. operationIds name operations in bindings,
// policies and metrics, so two operations must not share one.
func (c *openapiChecker) operation(op *yaml.Node, ptr string, k *yaml.Node) *Error {
	if !isMapping(op) {
		return errAt(ptr, nodeOr(op, k), "operation must be a mapping")
	}
	if rk, rv := lookup(op, "responses"); rk != nil && !isMapping(rv) {
		return errAt(child(ptr, "responses"), nodeOr(rv, rk), "responses must be a mapping")
	}
	return checkOperationID(c.opIDs, op, ptr, "operationId")
}

// checkOperationID checks that field (operationId) of op, when present, is a
// string not used by another operation. The same operation reached twice
// (through a YAML alias or a shared $ref) is not a duplicate.
func checkOperationID(ids map[string]*yaml.Node, op *yaml.Node, ptr, field string) *Error {
	ik, iv := lookup(op, field)
	if ik == nil {
		return nil
	}
	id, ok := stringValue(iv)
	if !ok {
		return errAt(child(ptr, field), nodeOr(iv, ik), "%s must be a string", field)
	}
	op = deref(op)
	if prev, dup := ids[id]; dup && prev != op {
		return errAt(child(ptr, field), iv, "%s %q is already used by the operation at line %d", field, clip(id), prev.Line)
	}
	ids[id] = op
	return nil
}

// refString returns the value of a $ref node, or "" when it is not a string.
func refString(n *yaml.Node) string {
	s, _ := stringValue(n)
	return s
}

// checkServers checks the servers list: each a mapping with a url whose
// {variables} are all declared with a default. The first server's url gives
// the base path and protocol of the bindings, so it must be unambiguous.
func checkServers(root *yaml.Node) *Error {
	sk, servers := lookup(root, "servers")
	if sk == nil {
		return nil
	}
	if servers == nil || servers.Kind != yaml.SequenceNode {
		return errAt("/servers", nodeOr(servers, sk), "servers must be a sequence")
	}
	for i, s := range servers.Content {
		ptr := "/servers/" + strconv.Itoa(i)
		s = deref(s)
		if !isMapping(s) {
			return errAt(ptr, nodeOr(s, servers), "server must be a mapping")
		}
		u, e := requiredString(s, ptr, "url")
		if e != nil {
			return e
		}
		defaults, e := serverVariables(s, ptr)
		if e != nil {
			return e
		}
		_, un := lookup(s, "url")
		uptr := child(ptr, "url")
		if p := templateProblem(u); p != "" {
			return errAt(uptr, un, "server url %q: %s", clip(u), p)
		}
		for _, name := range templateNames(u) {
			if _, ok := defaults[name]; !ok {
				return errAt(uptr, un, "server url uses {%s}, which is not declared in the server's variables", clip(name))
			}
		}
		if _, err := url.Parse(expandTemplate(u, defaults)); err != nil {
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			return errAt(uptr, un, "server url %q does not parse: %v", clip(u), err)
		}
	}
	return nil
}

// serverVariables returns the defaults of a Server's variables, checking
// each has one (the specification requires it; without it the url has no
// value to substitute).
func serverVariables(s *yaml.Node, ptr string) (map[string]string, *Error) {
	vk, vars := lookup(s, "variables")
	if vk == nil {
		return nil, nil
	}
	vptr := child(ptr, "variables")
	if !isMapping(vars) {
		return nil, errAt(vptr, nodeOr(vars, vk), "variables must be a mapping")
	}
	out := map[string]string{}
	for _, en := range entries(vars) {
		p := child(vptr, en.key)
		if !isMapping(en.v) {
			return nil, errAt(p, en.v, "server variable must be a mapping")
		}
		def, e := requiredString(en.v, p, "default")
		if e != nil {
			return nil, e
		}
		out[en.key] = def
	}
	return out, nil
}

// expandTemplate replaces each {name} of s with vals[name].
func expandTemplate(s string, vals map[string]string) string {
	if !strings.Contains(s, "{") {
		return s
	}
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '{')
		if i < 0 {
			break
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			break
		}
		b.WriteString(s[:i])
		b.WriteString(vals[s[i+1:i+j]])
		s = s[i+j+1:]
	}
	b.WriteString(s)
	return b.String()
}

// serverBase returns the scheme (lower case) and base path of the first
// server. Without servers, OpenAPI's default server is "/".
func serverBase(root *yaml.Node) (scheme, base string) {
	_, servers := lookup(root, "servers")
	if servers == nil || servers.Kind != yaml.SequenceNode || len(servers.Content) == 0 {
		return "", "/"
	}
	s := servers.Content[0]
	_, un := lookup(s, "url")
	u, _ := stringValue(un)
	defaults, _ := serverVariables(s, "")
	pu, err := url.Parse(expandTemplate(u, defaults))
	if err != nil {
		return "", "/"
	}
	// Clean, so that the data plane joins base and operation paths without
	// doubled or trailing slashes, and a base path cannot climb with "..".
	return strings.ToLower(pu.Scheme), path.Clean("/" + pu.Path)
}

// pathOperations calls fn with each operation of a path item, following the
// item's $ref chain. An operation of the item itself wins over one of the
// same method in the item it refers to.
func pathOperations(r *resolver, item *yaml.Node, fn func(method string, op *yaml.Node)) {
	var seen uint8 // bit i: httpMethods[i] found
	followRefs(r, item, func(n *yaml.Node) {
		for i, m := range httpMethods {
			op := r.key(n, m)
			if seen&(1<<i) != 0 || !isMapping(op) {
				continue
			}
			seen |= 1 << i
			fn(m, op)
		}
	})
}

// openapiBindings extracts the HTTP (or CoAP) binding of an OpenAPI document.
func openapiBindings(root *yaml.Node) model.Bindings {
	r := newResolver(root)
	scheme, base := serverBase(root)
	var ops []model.HTTPOperation
	_, paths := lookup(root, "paths")
	for _, en := range entries(paths) {
		if !strings.HasPrefix(en.key, "/") {
			continue
		}
		pathOperations(r, en.v, func(method string, op *yaml.Node) {
			id, _ := stringValue(r.key(op, "operationId"))
			ops = append(ops, model.HTTPOperation{Method: strings.ToUpper(method), Path: en.key, OperationID: id})
		})
	}
	sort.Slice(ops, func(i, j int) bool {
		if ops[i].Path != ops[j].Path {
			return ops[i].Path < ops[j].Path
		}
		return ops[i].Method < ops[j].Method
	})
	if !coapSchemes[scheme] {
		return model.Bindings{HTTP: &model.HTTPBinding{BasePath: base, Operations: ops}}
	}
	// CoAP resources carry no separate base path, so it is joined in.
	var res []model.CoAPResource
	for _, op := range ops {
		if !coapMethods[op.Method] {
			continue
		}
		p := strings.TrimSuffix(base, "/") + op.Path
		if n := len(res); n > 0 && res[n-1].Path == p {
			res[n-1].Methods = append(res[n-1].Methods, op.Method)
			continue
		}
		res = append(res, model.CoAPResource{Path: p, Methods: []string{op.Method}})
	}
	return model.Bindings{CoAP: &model.CoAPBinding{Resources: res}}
}
