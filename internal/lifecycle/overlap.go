package lifecycle

import (
	"fmt"
	"strings"

	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/spec"
	"github.com/fleetgate/fleetgate/internal/spec/shape"
	"github.com/fleetgate/fleetgate/internal/store"
)

// maxOverlaps bounds the overlaps reported for one version.
const maxOverlaps = 100

// Overlap is an operation of a version with the same shape as an operation
// of another API of the tenant: the same capability under another name.
type Overlap struct {
	Kind           string `json:"kind"` // "near-duplicate"
	Protocol       string `json:"protocol"`
	Operation      string `json:"operation"`
	OtherAPI       string `json:"other_api"`
	OtherVersion   string `json:"other_version"`
	OtherState     string `json:"other_state"`
	OtherOperation string `json:"other_operation"`
}

// Overlaps compares v's operations with those of the active (published and
// deprecated) versions of the tenant's other APIs. Operations at the same
// route are collisions, which refuse publishing (collisionsOnPublish), so
// they are not repeated here. A spec that does not parse has no overlaps:
// the spec and lint checks report it.
func Overlaps(tx store.Tx, v *model.Version) ([]Overlap, error) {
	mine := shapes(v)
	if len(mine) == 0 {
		return nil, nil
	}
	others, err := tx.ListVersionsByState(v.TenantID, model.StatePublished, model.StateDeprecated)
	if err != nil {
		return nil, err
	}
	type site struct {
		v     *model.Version
		op    shape.Op
		route string
	}
	byShape := map[string][]site{}
	for i := range others {
		o := &others[i]
		if o.APIID == v.APIID {
			continue // versions of one API are meant to look alike
		}
		for _, op := range shapes(o) {
			byShape[op.Fingerprint] = append(byShape[op.Fingerprint], site{o, op, route(o, op)})
		}
	}
	out := []Overlap{}
	for _, op := range mine {
		r := route(v, op)
		for _, s := range byShape[op.Fingerprint] {
			if s.route == r {
				continue
			}
			if len(out) == maxOverlaps {
				return out, nil
			}
			out = append(out, Overlap{Kind: "near-duplicate", Protocol: op.Protocol, Operation: op.Label(),
				OtherAPI: s.v.APIName, OtherVersion: s.v.Label, OtherState: string(s.v.State), OtherOperation: s.op.Label()})
		}
	}
	return out, nil
}

// shapes lists the fingerprinted operations of v's spec.
func shapes(v *model.Version) []shape.Op {
	if v.Spec == nil {
		return nil
	}
	doc, err := spec.Parse([]byte(v.Spec.Content))
	if err != nil {
		return nil
	}
	var out []shape.Op
	for _, op := range shape.Of(doc) {
		if op.Fingerprint != "" {
			out = append(out, op)
		}
	}
	return out
}

// route is where op is served, parameter names erased, as surface keys it.
func route(v *model.Version, op shape.Op) string {
	p := op.Path
	if op.Protocol == "http" && v.Bindings.HTTP != nil {
		p = strings.TrimSuffix(v.Bindings.HTTP.BasePath, "/") + p
	}
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
			segs[i] = "{}"
		}
	}
	return op.Protocol + " " + op.Action + " " + strings.Join(segs, "/")
}

// nearDuplicatesOnSubmit warns, without refusing, when a submitted
// version repeats operations of another API: reviewers decide whether it
// is a copy to consolidate or a deliberate variant.
func nearDuplicatesOnSubmit(tx store.Tx, r *Request) error {
	if r.To != model.StateInReview || r.Version.Spec == nil {
		return nil
	}
	os, err := Overlaps(tx, r.Version)
	if err != nil || len(os) == 0 {
		return err
	}
	var first []string
	for _, o := range os[:min(3, len(os))] {
		first = append(first, fmt.Sprintf("%s has the shape of %s in %s/%s", o.Operation, o.OtherOperation, o.OtherAPI, o.OtherVersion))
	}
	r.Warnings = append(r.Warnings, Warning{Check: "near-duplicate", Data: os,
		Detail: fmt.Sprintf("%d operation(s) look like operations of other APIs: %s", len(os), strings.Join(first, "; "))})
	return nil
}
