package policy

import (
	"fmt"
	"strings"
)

// router matches a path (HTTP path, MQTT topic, CoAP resource) against
// '/'-separated templates whose segments are literals or {parameters}. It is
// built once per snapshot and read concurrently without locks.
//
// Literal segments win over parameters at the same depth, so /devices/self
// and /devices/{id} can coexist; a parameter never matches an empty
// segment, nor (for MQTT) a wildcard character.
type router struct {
	roots map[string]*node // by action (HTTP method, "publish", "subscribe")
}

type node struct {
	literal map[string]*node
	param   *node
	name    string // parameter name when this is a param node
	route   *Route
}

func newRouter() *router { return &router{roots: map[string]*node{}} }

// add registers template for action. It fails when the template is
// malformed or collides with an existing one (same shape, ignoring
// parameter names), which would make matching ambiguous.
func (r *router) add(action, template string, rt *Route) error {
	segs, err := splitTemplate(template)
	if err != nil {
		return err
	}
	n := r.roots[action]
	if n == nil {
		n = &node{}
		r.roots[action] = n
	}
	params := 0
	for _, s := range segs {
		if name, ok := paramName(s); ok {
			params++
			if params > MaxParams {
				return fmt.Errorf("template %s: more than %d parameters", template, MaxParams)
			}
			if n.param == nil {
				n.param = &node{name: name}
			}
			n = n.param
			continue
		}
		if n.literal == nil {
			n.literal = map[string]*node{}
		}
		c := n.literal[s]
		if c == nil {
			c = &node{}
			n.literal[s] = c
		}
		n = c
	}
	if n.route != nil {
		return fmt.Errorf("%s %s collides with %s %s of %s/%s", action, template, action, n.route.Template, n.route.API, n.route.Version)
	}
	n.route = rt
	return nil
}

// splitTemplate validates and splits a template. Parameter segments are
// whole segments: "{vin}" but not "x{vin}".
func splitTemplate(t string) ([]string, error) {
	if t == "" || len(t) > 4096 {
		return nil, fmt.Errorf("template %q: empty or longer than 4096 bytes", t)
	}
	segs := strings.Split(t, "/")
	for _, s := range segs {
		if strings.ContainsAny(s, "{}") {
			if _, ok := paramName(s); !ok {
				return nil, fmt.Errorf("template %q: segment %q: a parameter must be a whole segment like {id}", t, s)
			}
		}
		if strings.ContainsAny(s, "+#") {
			return nil, fmt.Errorf("template %q: wildcards are not allowed in templates", t)
		}
	}
	return segs, nil
}

func paramName(seg string) (string, bool) {
	if len(seg) < 3 || seg[0] != '{' || seg[len(seg)-1] != '}' {
		return "", false
	}
	name := seg[1 : len(seg)-1]
	if strings.ContainsAny(name, "{}/") {
		return "", false
	}
	return name, true
}

// match finds the route of action for path and appends its parameters to
// params (which should have capacity MaxParams to avoid allocation).
func (r *router) match(action, path string, params []Param) (*Route, []Param) {
	n := r.roots[action]
	if n == nil || len(path) > 8192 {
		return nil, params
	}
	return n.match(path, params)
}

func (n *node) match(rest string, params []Param) (*Route, []Param) {
	// Take the next segment.
	seg, tail, more := strings.Cut(rest, "/")
	if c := n.literal[seg]; c != nil {
		if !more {
			if c.route != nil {
				return c.route, params
			}
		} else if rt, p := c.match(tail, params); rt != nil {
			return rt, p
		}
	}
	if n.param != nil && seg != "" && !strings.ContainsAny(seg, "+#") {
		p := append(params, Param{Name: n.param.name, Value: seg})
		if !more {
			if n.param.route != nil {
				return n.param.route, p
			}
		} else if rt, p2 := n.param.match(tail, p); rt != nil {
			return rt, p2
		}
	}
	return nil, params
}

// walk calls fn for every route, for inventory and wildcard checks.
func (r *router) walk(fn func(action string, rt *Route)) {
	var rec func(action string, n *node)
	rec = func(action string, n *node) {
		if n.route != nil {
			fn(action, n.route)
		}
		for _, c := range n.literal {
			rec(action, c)
		}
		if n.param != nil {
			rec(action, n.param)
		}
	}
	for a, n := range r.roots {
		rec(a, n)
	}
}
