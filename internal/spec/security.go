package spec

import (
	"strings"

	"gopkg.in/yaml.v3"
)

// Security is how an OpenAPI operation says callers authenticate, resolved
// from its security requirements (or the document's) and the
// securitySchemes they name. Any one requirement suffices.
type Security struct {
	// Declared is false when neither the operation nor the document has a
	// `security` field: the gateway then accepts no one (deny by default).
	Declared bool
	// Anonymous: an empty requirement ({} or security: []) explicitly allows
	// unauthenticated calls.
	Anonymous bool
	// APIKeyHeaders are the header names of apiKey schemes (in: header).
	APIKeyHeaders []string
	// Bearer: an http bearer, oauth2 or openIdConnect scheme (a JWT).
	Bearer bool
	// MutualTLS: a mutualTLS scheme (OpenAPI 3.1).
	MutualTLS bool
}

// Security returns the security of the operation method (any case) on path
// (a key of `paths`). Unknown operations return the document default.
func (d *Document) Security(method, path string) Security {
	var sec Security
	if d == nil || d.root == nil || d.Format != FormatOpenAPI {
		return sec
	}
	reqs := securityOf(d.root)
	_, paths := lookup(d.root, "paths")
	_, item := lookup(paths, path)
	if item != nil {
		pathOperations(newResolver(d.root), item, func(m string, op *yaml.Node) {
			if strings.EqualFold(m, method) {
				if r := securityOf(op); r != nil {
					reqs = r
				}
			}
		})
	}
	if reqs == nil {
		return sec
	}
	sec.Declared = true
	if len(reqs.Content) == 0 {
		sec.Anonymous = true
		return sec
	}
	_, comps := lookup(d.root, "components")
	_, schemes := lookup(comps, "securitySchemes")
	for _, req := range reqs.Content {
		req = deref(req)
		es := entries(req)
		if len(es) == 0 {
			sec.Anonymous = true
			continue
		}
		for _, e := range es {
			_, scheme := lookup(schemes, e.key)
			typ, _ := stringValue(field(scheme, "type"))
			switch typ {
			case "apiKey":
				in, _ := stringValue(field(scheme, "in"))
				name, _ := stringValue(field(scheme, "name"))
				if in == "header" && name != "" {
					sec.APIKeyHeaders = append(sec.APIKeyHeaders, name)
				}
			case "http":
				if s, _ := stringValue(field(scheme, "scheme")); strings.EqualFold(s, "bearer") {
					sec.Bearer = true
				}
			case "oauth2", "openIdConnect":
				sec.Bearer = true
			case "mutualTLS":
				sec.MutualTLS = true
			}
		}
	}
	return sec
}

// securityOf returns the `security` sequence of n, or nil when absent.
func securityOf(n *yaml.Node) *yaml.Node {
	_, v := lookup(n, "security")
	if v == nil || v.Kind != yaml.SequenceNode {
		return nil
	}
	return v
}

func field(m *yaml.Node, key string) *yaml.Node {
	_, v := lookup(m, key)
	return v
}
