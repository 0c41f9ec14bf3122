package diff

import (
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

var httpMethods = [...]string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// httpOp is an OpenAPI operation, keyed by what routes it: the method and
// the path template with parameter names erased ("/vehicles/{}"), since
// renaming {vin} to {id} changes no URL a client sends.
type httpOp struct {
	key, label string
	path       string
	loc, item  loc
	params     []param
}

// param is a parameter, keyed by location and name; path parameters by
// position, for the same reason as above. Changes point at site, where
// the operation lists it (possibly as a $ref); loc is the Parameter
// object itself.
type param struct {
	key, name string
	site, loc loc
}

// openapiSide is one document's operations, in document order.
type openapiSide struct {
	t     *tree
	ops   map[string]*httpOp
	order []string
	memo  map[[2]*yaml.Node][]param
}

// routeKey erases parameter names from a path template.
func routeKey(method, p string) string {
	var b strings.Builder
	b.WriteString(method)
	b.WriteByte(' ')
	for {
		i := strings.IndexByte(p, '{')
		j := strings.IndexByte(p[max(i, 0):], '}')
		if i < 0 || j < 0 {
			break
		}
		b.WriteString(p[:i])
		b.WriteString("{}")
		p = p[i+j+1:]
	}
	b.WriteString(p)
	return b.String()
}

// collect lists the operations of /paths, following path item $refs (the
// item's own operations win, as in spec.Bindings). Two templates that
// route the same (/a/{x} and /a/{y}) are one operation; the first wins.
func (d *differ) collect(t *tree) *openapiSide {
	s := &openapiSide{t: t, ops: map[string]*httpOp{}, memo: map[[2]*yaml.Node][]param{}}
	keys, items := fields(t.At(loc{Node: t.Root}, "paths"))
	for i, p := range keys {
		if !strings.HasPrefix(p, "/") {
			continue
		}
		var done uint8
		var chain []*yaml.Node
		for item := items[i]; item.Valid() && isMap(item.Node) && !slices.Contains(chain, item.Node) && len(chain) <= maxRefHops; {
			chain = append(chain, item.Node)
			for mi, m := range httpMethods {
				op := t.At(item, m)
				if done&(1<<mi) != 0 || !isMap(op.Node) {
					continue
				}
				done |= 1 << mi
				method := strings.ToUpper(m)
				key := routeKey(method, p)
				if _, dup := s.ops[key]; dup || !d.step() {
					continue
				}
				s.ops[key] = &httpOp{key: key, label: method + " " + p, path: p, loc: op, item: item, params: s.params(d, p, item, op)}
				s.order = append(s.order, key)
			}
			ref, ok := str(t.Val(item.Node, "$ref"))
			if !ok {
				break
			}
			item = t.Resolve(ref)
		}
	}
	return s
}

// params merges the path item's parameters with the operation's (which
// override same name and location), memoized per (item, operation).
func (s *openapiSide) params(d *differ, p string, item, op loc) []param {
	mk := [2]*yaml.Node{item.Node, op.Node}
	if ps, ok := s.memo[mk]; ok {
		return ps
	}
	names := templateNames(p)
	var out []param
	have := map[string]bool{}
	for _, list := range [...]loc{s.t.At(op, "parameters"), s.t.At(item, "parameters")} {
		for _, e := range elems(list) {
			if !d.step() {
				break
			}
			site := e
			e = s.t.Follow(e)
			in, _ := str(s.t.Val(e.Node, "in"))
			name, _ := str(s.t.Val(e.Node, "name"))
			key := in + ":" + name
			switch in {
			case "header":
				key = in + ":" + strings.ToLower(name) // RFC 9110 §5.1
			case "path":
				if i := slices.Index(names, name); i >= 0 {
					key = "path:#" + strconv.Itoa(i)
				}
			}
			if !have[key] {
				have[key] = true
				out = append(out, param{key: key, name: name, site: site, loc: e})
			}
		}
	}
	s.memo[mk] = out
	return out
}

// openapi compares two OpenAPI documents.
func (d *differ) openapi() {
	o, n := d.collect(d.old), d.collect(d.new)
	d.basePath()
	d.schemes()
	for _, k := range o.order {
		if _, ok := n.ops[k]; !ok {
			op := o.ops[k]
			d.add("operation-removed", true, op.loc.Ptr, "%s was removed", clip(op.label))
		}
	}
	for _, k := range n.order {
		nop := n.ops[k]
		oop, ok := o.ops[k]
		if !ok {
			d.add("operation-added", false, nop.loc.Ptr, "%s was added", clip(nop.label))
			continue
		}
		d.operation(oop, nop)
	}
}

// basePath reports a changed base path (the first server's url path):
// every client URL changes with it.
func (d *differ) basePath() {
	ob, _ := serverBase(d.old)
	nb, at := serverBase(d.new)
	if ob != nb {
		if at.Ptr == "" {
			at.Ptr = "/servers"
		}
		d.add("base-path-changed", true, at.Ptr, "the base path changed from %s to %s; every request URL changes", clip(ob), clip(nb))
	}
}

// serverBase returns the base path of the first server ("/" without one).
func serverBase(t *tree) (string, loc) {
	ss := elems(t.At(loc{Node: t.Root}, "servers"))
	if len(ss) == 0 {
		return "/", loc{}
	}
	u := t.At(ss[0], "url")
	s, _ := str(u.Node)
	vals := map[string]string{}
	for _, e := range entries(t.Val(ss[0].Node, "variables")) {
		vals[e.Key], _ = str(t.Val(e.V, "default"))
	}
	pu, err := url.Parse(expandTemplate(s, vals))
	if err != nil {
		return "/", u
	}
	return path.Clean("/" + pu.Path), u
}

// operation compares two versions of one operation.
func (d *differ) operation(o, n *httpOp) {
	label := clip(n.label)
	d.parameters(o, n, label)
	d.requestBody(o, n, label)
	d.responses(o, n, label)
	d.security(o.loc, n.loc, label)
}

// required reads a parameter's or body's `required`; path parameters are
// always required.
func required(t *tree, n *yaml.Node) bool {
	if in, _ := str(t.Val(n, "in")); in == "path" {
		return true
	}
	return isTrue(t.Val(n, "required"))
}

func (d *differ) parameters(o, n *httpOp, label string) {
	index := func(ps []param) map[string]param {
		m := make(map[string]param, len(ps))
		for _, p := range ps {
			m[p.key] = p
		}
		return m
	}
	oldByKey, newByKey := index(o.params), index(n.params)
	for _, op := range o.params {
		if _, ok := newByKey[op.key]; !ok {
			d.add("parameter-removed", true, op.site.Ptr, "%s: parameter %q was removed; clients still send it", label, clip(op.name))
		}
	}
	for _, np := range n.params {
		req := required(d.new, np.loc.Node)
		op, ok := oldByKey[np.key]
		switch {
		case !ok && req:
			d.add("parameter-required-added", true, np.site.Ptr, "%s: new required parameter %q; existing clients do not send it", label, clip(np.name))
		case !ok:
			d.add("parameter-optional-added", false, np.site.Ptr, "%s: new optional parameter %q", label, clip(np.name))
		default:
			if req && !required(d.old, op.loc.Node) {
				d.add("parameter-became-required", true, np.site.Ptr, "%s: parameter %q is now required", label, clip(np.name))
			}
			d.schema(d.old.At(op.loc, "schema"), d.new.At(np.loc, "schema"), request, label+" parameter "+strconv.Quote(clip(np.name)), 0)
		}
	}
}

func (d *differ) requestBody(o, n *httpOp, label string) {
	ob, nb := d.old.Follow(d.old.At(o.loc, "requestBody")), d.new.Follow(d.new.At(n.loc, "requestBody"))
	switch {
	case !ob.Valid() && !nb.Valid():
		return
	case !ob.Valid():
		if required(d.new, nb.Node) {
			d.add("request-body-required-added", true, nb.Ptr, "%s: a request body is now required", label)
		} else {
			d.add("request-body-added", false, nb.Ptr, "%s: an optional request body was added", label)
		}
		return
	case !nb.Valid():
		d.add("request-body-removed", true, ob.Ptr, "%s: the request body was removed; clients still send one", label)
		return
	}
	if required(d.new, nb.Node) && !required(d.old, ob.Node) {
		d.add("request-body-became-required", true, nb.Ptr, "%s: the request body is now required", label)
	}
	d.content(ob, nb, request, true, label+" request body")
}

// content compares the media types of a request body or response.
// Removing a media type a client sends (request) or expects (a success
// response) breaks it.
func (d *differ) content(o, n loc, dir direction, removalBreaks bool, label string) {
	oc, nc := d.old.At(o, "content"), d.new.At(n, "content")
	// The memo key folds in removalBreaks: one content object can serve a
	// success and an error response, which judge removals differently.
	key := dir
	if removalBreaks {
		key += 2
	}
	if oc.Valid() && nc.Valid() && !d.once(oc.Node, nc.Node, key) {
		return
	}
	okeys, olocs := fields(oc)
	for i, mt := range okeys {
		nm := d.new.At(nc, mt)
		if !nm.Valid() {
			d.add("media-type-removed", removalBreaks, olocs[i].Ptr, "%s: media type %s was removed", label, clip(mt))
			continue
		}
		d.schema(d.old.At(olocs[i], "schema"), d.new.At(nm, "schema"), dir, label, 0)
	}
	nkeys, nlocs := fields(nc)
	for i, mt := range nkeys {
		if k, _ := d.old.Get(oc.Node, mt); k == nil {
			d.add("media-type-added", false, nlocs[i].Ptr, "%s: media type %s was added", label, clip(mt))
		}
	}
}

// successCode reports whether a response key is a success (2xx, 3xx) or
// the default response: those are what clients are written against.
func successCode(code string) bool {
	return code == "default" || strings.HasPrefix(code, "2") || strings.HasPrefix(code, "3")
}

func (d *differ) responses(o, n *httpOp, label string) {
	or, nr := d.old.At(o.loc, "responses"), d.new.At(n.loc, "responses")
	okeys, olocs := fields(or)
	for i, code := range okeys {
		nl := d.new.At(nr, code)
		if !nl.Valid() {
			d.add("response-code-removed", successCode(code), olocs[i].Ptr, "%s: response %s was removed", label, clip(code))
			continue
		}
		d.content(d.old.Follow(olocs[i]), d.new.Follow(nl), response, successCode(code), label+" response "+clip(code))
	}
	nkeys, nlocs := fields(nr)
	for i, code := range nkeys {
		if k, _ := d.old.Get(or.Node, code); k == nil {
			d.add("response-code-added", false, nlocs[i].Ptr, "%s: response %s was added", label, clip(code))
		}
	}
}

// clip shortens author-controlled text quoted in messages.
func clip(s string) string {
	if len(s) <= 80 {
		return s
	}
	i := 80
	for i > 0 && !utf8.RuneStart(s[i]) {
		i-- // never cut a character in two
	}
	return s[:i] + "..."
}
