package diff

import (
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// requirement is one alternative of a security requirement list: scheme
// name -> scopes. An empty requirement lets anyone in.
type requirement map[string][]string

// securityField returns the effective `security` list of an OpenAPI
// operation: its own, else the document's. declared is false when neither
// exists; the data plane then admits no one.
func securityField(t *tree, op loc) (at loc, declared bool) {
	at = t.At(op, "security")
	if !at.Valid() || !isSeq(at.Node) {
		at = t.At(loc{Node: t.Root}, "security")
	}
	if !at.Valid() || !isSeq(at.Node) {
		return loc{}, false
	}
	return at, true
}

// parseReqs reads a requirement list; size counts schemes and scopes, to
// charge the reading to the budget.
func parseReqs(at loc) (reqs []requirement, size int) {
	for _, r := range items(at.Node) {
		req := requirement{}
		for _, e := range entries(r) {
			var scopes []string
			for _, s := range items(e.V) {
				if v, ok := str(s); ok {
					scopes = append(scopes, v)
				}
			}
			req[e.Key] = scopes
			size += 1 + len(scopes)
		}
		reqs = append(reqs, req)
		size++
	}
	return reqs, size
}

// satisfies reports whether a client holding the credentials of have can
// meet need: every scheme of need is in have, with no scope that have lacks.
func satisfies(have, need requirement) bool {
	for s, scopes := range need {
		hs, ok := have[s]
		if !ok {
			return false
		}
		for _, sc := range scopes {
			if !slices.Contains(hs, sc) {
				return false
			}
		}
	}
	return true
}

// renderReqs renders a requirement list for messages, "bearer | apiKey+
// oauth[read]", alternatives sorted (their order means nothing). With
// limit > 0 only the first limit alternatives are shown; limit 0 gives the
// canonical form used to tell whether two lists are the same.
func renderReqs(reqs []requirement, declared bool, limit int) string {
	if !declared {
		return "none declared (no one admitted)"
	}
	if len(reqs) == 0 {
		return "anonymous"
	}
	alts := make([]string, 0, len(reqs))
	for _, r := range reqs {
		if len(r) == 0 {
			alts = append(alts, "anonymous")
			continue
		}
		names := make([]string, 0, len(r))
		for s, scopes := range r {
			if len(scopes) > 0 {
				s += "[" + strings.Join(scopes, ",") + "]"
			}
			names = append(names, s)
		}
		sort.Strings(names)
		alts = append(alts, strings.Join(names, "+"))
	}
	sort.Strings(alts)
	if limit > 0 {
		for i := range alts {
			alts[i] = clip(alts[i])
		}
		if len(alts) > limit {
			alts = append(alts[:limit], "...")
		}
	}
	return strings.Join(alts, " | ")
}

// anonymous reports whether a requirement list admits anyone.
func anonymous(reqs []requirement) bool {
	return len(reqs) == 0 || slices.ContainsFunc(reqs, func(r requirement) bool { return len(r) == 0 })
}

// secVerdict is the outcome of comparing two requirement lists. It is
// memoized per pair of lists: a document-wide `security` is inherited by
// every operation, and is compared once, not once per operation.
type secVerdict struct {
	kind, before, after, broken string // kind is "" when nothing changed
}

// security compares the effective security of an operation. A change
// breaks clients when some way they could authenticate before no longer
// satisfies any alternative now; a new alternative, or dropping a scope,
// does not.
func (d *differ) security(oop, nop loc, label string) {
	oat, odecl := securityField(d.old, oop)
	nat, ndecl := securityField(d.new, nop)
	key := [2]*yaml.Node{oat.Node, nat.Node}
	v, ok := d.secMemo[key]
	if !ok {
		v = d.compareSecurity(oat, odecl, nat, ndecl)
		d.secMemo[key] = v
	}
	if !nat.Valid() {
		nat = nop
	}
	switch v.kind {
	case "security-changed":
		d.add(v.kind, true, nat.Ptr, "%s: security changed from %s to %s; %s are refused", label, v.before, v.after, v.broken)
	case "security-removed":
		d.add(v.kind, false, nat.Ptr, "%s: security changed from %s to %s; the operation no longer requires authentication", label, v.before, v.after)
	case "security-relaxed":
		d.add(v.kind, false, nat.Ptr, "%s: security changed from %s to %s; every caller admitted before still is", label, v.before, v.after)
	}
}

func (d *differ) compareSecurity(oat loc, odecl bool, nat loc, ndecl bool) secVerdict {
	oreqs, osize := parseReqs(oat)
	nreqs, nsize := parseReqs(nat)
	if !d.spend(osize+nsize) || renderReqs(oreqs, odecl, 0) == renderReqs(nreqs, ndecl, 0) {
		return secVerdict{}
	}
	v := secVerdict{before: renderReqs(oreqs, odecl, 5), after: renderReqs(nreqs, ndecl, 5)}
	switch {
	case !odecl: // no one could call it before
	case !ndecl:
		v.broken = "every caller"
	case anonymous(nreqs):
	case anonymous(oreqs):
		v.broken = "anonymous callers"
	default:
		for _, have := range oreqs {
			if !d.spend(len(nreqs) + len(have)) {
				return secVerdict{}
			}
			if !slices.ContainsFunc(nreqs, func(need requirement) bool { return satisfies(have, need) }) {
				v.broken = "callers using " + renderReqs([]requirement{have}, true, 1)
				break
			}
		}
	}
	switch {
	case v.broken != "":
		v.kind = "security-changed"
	case ndecl && anonymous(nreqs) && !anonymous(oreqs):
		v.kind = "security-removed"
	default:
		v.kind = "security-relaxed"
	}
	return v
}

// schemeFields are the fields of a Security Scheme that decide what a
// client must send.
var schemeFields = [...]string{"type", "in", "name", "scheme", "bearerFormat", "openIdConnectUrl"}

// schemes compares components.securitySchemes: a scheme that changes what
// clients send (an API key moved to another header, basic to bearer) or
// disappears breaks every operation that uses it.
func (d *differ) schemes() {
	ptr := func(t *tree) loc { return t.At(t.At(loc{Node: t.Root}, "components"), "securitySchemes") }
	os, ns := ptr(d.old), ptr(d.new)
	names, olocs := fields(os)
	for i, name := range names {
		nl := d.new.Follow(d.new.At(ns, name))
		if !nl.Valid() {
			d.add("security-scheme-removed", true, olocs[i].Ptr, "security scheme %q was removed", clip(name))
			continue
		}
		ol := d.old.Follow(olocs[i])
		for _, f := range schemeFields {
			ov, _ := str(d.old.Val(ol.Node, f))
			nv, _ := str(d.new.Val(nl.Node, f))
			if ov != nv {
				at := d.new.At(nl, f)
				if !at.Valid() {
					at = nl
				}
				d.add("security-scheme-changed", true, at.Ptr, "security scheme %q: %s changed from %q to %q; clients send the old credential", clip(name), f, clip(ov), clip(nv))
			}
		}
	}
}
