package review

import (
	"fmt"
	"slices"

	"github.com/fleetgate/fleetgate/internal/lifecycle"
	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/store"
)

// Check is the lifecycle check that holds in_review -> published until the
// current round has the tenant's number of approvals. Whoever makes the
// transition counts as one approval when eligible (so a reviewer publishing
// through the transitions endpoint is an approval, as before this
// workflow), except the scheduler, which publishes only what was approved.
// It runs on every path to publication: the review endpoints, the
// transitions endpoint and the scheduler.
func Check(tx store.Tx, r *lifecycle.Request) error {
	if r.Version.State != model.StateInReview || r.To != model.StatePublished {
		return nil
	}
	st, err := Load(tx, r.Version)
	if err != nil {
		return err
	}
	approvals := st.Approvals(r.Version)
	n := len(approvals)
	byActor := slices.ContainsFunc(approvals, func(e model.ReviewEvent) bool { return e.Actor == r.ActorName })
	if r.ActorName != SystemActor && !byActor {
		if ref := Eligible(r.Actor, r.ActorName, r.Version, st.CoAuthors, st.Settings); ref == nil {
			n++
		} else if ref.Kind == KindSelfApproval {
			return &lifecycle.CheckError{Check: "separation-of-duties", Detail: ref.Detail}
		}
	}
	if n >= st.Settings.ApprovalsRequired {
		return nil
	}
	who := make([]string, len(approvals))
	for i, a := range approvals {
		who[i] = a.Actor
	}
	return &lifecycle.CheckError{Check: "approvals-required",
		Data:   map[string]any{"round": st.Round, "approvals": who, "required": st.Settings.ApprovalsRequired},
		Detail: fmt.Sprintf("review round %d has %d of the %d approvals this tenant requires", st.Round, n, st.Settings.ApprovalsRequired)}
}
