// Package diff finds the changes between an API version's description and
// its predecessor's, and says which of them break existing clients.
//
// A gateway for IoT fleets cannot assume clients upgrade: firmware in the
// field speaks the version it shipped with for years. So the lifecycle runs
// Compare when a version is submitted, and a breaking change under the same
// major version (RequiresMajor) must be resolved before review: either the
// change is undone or the version becomes a new major that runs side by
// side with the old one.
//
// "Breaking" is judged from the client's side. Requests may accept more
// and responses may promise less: a request that was valid must stay valid
// (no new required parameter or field, no narrowed type or enum, no stricter
// security), and a response a client could parse must stay parseable (no
// removed field or success code, no new type or enum value). AsyncAPI
// messages a device publishes are judged like requests, messages it
// receives like responses.
//
// What is compared: OpenAPI operations (keyed by method and route, so
// renaming {vin} to {id} is no change), their parameters, request bodies
// (media types; schemas: types, enums, required and removed fields, into
// nested properties, items and allOf), responses (codes, media types,
// schemas), security requirements and security schemes, and the base path;
// AsyncAPI channels (keyed by address), their publish/subscribe (2.x) or
// send/receive (3.0) actions, and message payloads and headers. Webhooks,
// oneOf/anyOf alternatives and AsyncAPI security are not compared.
//
// Compare does no I/O and is safe for concurrent use; it is bounded in time
// on hostile documents (see maxSteps).
package diff

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/fleetgate/fleetgate/internal/spec"
)

// Change is one difference between two documents.
type Change struct {
	// Kind names the change, e.g. "operation-removed",
	// "parameter-required-added", "enum-narrowed", "security-changed",
	// "operation-added". Kinds are stable: tooling may match on them.
	Kind     string `json:"kind"`
	Breaking bool   `json:"breaking"`
	// Pointer is an RFC 6901 JSON pointer into the new document, or into
	// the old one for things that were removed.
	Pointer string `json:"pointer"`
	Message string `json:"message"`
}

// String renders c as one line, "BREAKING kind pointer: message" or
// "ok kind pointer: message", as CLIs and golden files show it.
func (c Change) String() string {
	tag := "ok"
	if c.Breaking {
		tag = "BREAKING"
	}
	p := c.Pointer
	if p == "" {
		p = "(document)"
	}
	return tag + " " + c.Kind + " " + p + ": " + c.Message
}

// maxSteps bounds the work of one Compare: schema pairs compared and
// parameters merged. $refs let a small document describe an exponential
// tree of schemas; memo sets make shared pairs cost once, and this budget
// caps what is left. Real descriptions need a few thousand steps. When the
// budget runs out, Compare reports a breaking "diff-incomplete" change, so
// an unreviewable diff is never mistaken for a safe one.
const maxSteps = 1_000_000

// differ holds the state of one Compare.
type differ struct {
	old, new *tree
	out      []Change
	seen     map[Change]bool
	steps    int
	stopped  bool
	pairs    map[pairKey]bool
	secMemo  map[[2]*yaml.Node]secVerdict
	views    map[*yaml.Node]*view // both trees: their nodes are distinct
}

// pairKey is a pair of schemas (or contents) compared in one direction.
type pairKey struct {
	o, n *yaml.Node
	d    direction
}

// Compare returns the changes from old to new, breaking ones first, then
// by pointer. Documents of different formats (OpenAPI and AsyncAPI) give a
// single breaking "format-changed". A nil document compares as no change:
// a first version has no predecessor.
func Compare(old, new *spec.Document) []Change {
	if old.Root() == nil || new.Root() == nil {
		return nil
	}
	d := &differ{old: newTree(old.Root()), new: newTree(new.Root()), seen: map[Change]bool{}, pairs: map[pairKey]bool{}, secMemo: map[[2]*yaml.Node]secVerdict{}, views: map[*yaml.Node]*view{}}
	switch {
	case old.Format != new.Format:
		d.add("format-changed", true, "/"+new.Format, "the document changed from %s to %s; no client of the old version can use the new one", old.Format, new.Format)
	case new.Format == spec.FormatOpenAPI:
		d.openapi()
	default:
		d.asyncapi()
	}
	sort.SliceStable(d.out, func(i, j int) bool {
		a, b := d.out[i], d.out[j]
		if a.Breaking != b.Breaking {
			return a.Breaking
		}
		if a.Pointer != b.Pointer {
			return a.Pointer < b.Pointer
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		return a.Message < b.Message
	})
	return d.out
}

// add records a change once.
func (d *differ) add(kind string, breaking bool, ptr, format string, args ...any) {
	c := Change{Kind: kind, Breaking: breaking, Pointer: ptr, Message: fmt.Sprintf(format, args...)}
	if !d.seen[c] {
		d.seen[c] = true
		d.out = append(d.out, c)
	}
}

// step spends one unit of the budget; false means stop.
func (d *differ) step() bool { return d.spend(1) }

// spend spends n units of the budget, for work proportional to n; false
// means the budget is exhausted and the caller should stop.
func (d *differ) spend(n int) bool {
	if d.steps+n > maxSteps {
		if !d.stopped {
			d.stopped = true
			d.add("diff-incomplete", true, "", "the documents are too large or too deeply referenced to compare completely (over %d steps); review the change by hand", maxSteps)
		}
		return false
	}
	d.steps += n
	return true
}

// once reports whether the pair (o, n) is compared in direction dir for
// the first time, and spends a step on it. Shared schemas and contents
// (via $ref) are compared once, which also ends $ref cycles.
func (d *differ) once(o, n *yaml.Node, dir direction) bool {
	k := pairKey{deref(o), deref(n), dir}
	if d.pairs[k] || !d.step() {
		return false
	}
	d.pairs[k] = true
	return true
}

// Breaking reports whether any change breaks existing clients.
func Breaking(cs []Change) bool {
	for _, c := range cs {
		if c.Breaking {
			return true
		}
	}
	return false
}

// RequiresMajor reports whether cs demands a new major version: it has a
// breaking change and the major component of the labels ("v1", "1.2.0",
// "v2.1-beta") did not change. Clients pin a major version; a breaking
// change within one would reach them without warning. Labels whose major
// cannot be read count as unchanged, so a breaking diff is never waved
// through on an odd label. Major 0 gets no exemption: devices run 0.x
// firmware too.
func RequiresMajor(cs []Change, oldLabel, newLabel string) bool {
	if !Breaking(cs) {
		return false
	}
	om, ok1 := major(oldLabel)
	nm, ok2 := major(newLabel)
	if !ok1 || !ok2 {
		return true
	}
	return om == nm
}

// major reads the major component of a version label.
func major(label string) (int, bool) {
	s := strings.TrimSpace(label)
	s = strings.TrimPrefix(strings.TrimPrefix(s, "v"), "V")
	end := 0
	for end < len(s) && s[end] >= '0' && s[end] <= '9' {
		end++
	}
	if end == 0 || end > 9 || (end < len(s) && s[end] != '.' && s[end] != '-' && s[end] != '+') {
		return 0, false
	}
	n, err := strconv.Atoi(s[:end])
	return n, err == nil
}
