package admin

import (
	"errors"
	"net/http"

	"github.com/fleetgate/fleetgate/internal/lifecycle"
	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/review"
	"github.com/fleetgate/fleetgate/internal/store"
)

// reviewRoutes are the review workflow: the review of a version (what
// governance found, comments, approvals, change requests), its
// co-authors, and the tenant's review settings.
func (s *Server) reviewRoutes() []route {
	return []route{
		{"GET", "/review-settings", s.getReviewSettings},
		{"PUT", "/review-settings", s.putReviewSettings},
		{"GET", "/apis/{api}/versions/{version}/review", s.getReview},
		{"POST", "/apis/{api}/versions/{version}/review/comments", s.commentReview},
		{"POST", "/apis/{api}/versions/{version}/review/approve", s.approveReview},
		{"POST", "/apis/{api}/versions/{version}/review/request-changes", s.requestChanges},
		{"GET", "/apis/{api}/versions/{version}/co-authors", s.listCoAuthors},
		{"POST", "/apis/{api}/versions/{version}/co-authors", s.addCoAuthor},
	}
}

// Review problems, with stable types.
func notInReview(v *model.Version) *Problem {
	return problem(http.StatusConflict, "not-in-review", "Not in review",
		"version "+v.APIName+"/"+v.Label+" is "+string(v.State)+"; only a version in review can be approved or sent back")
}

func refusalProblem(r *review.Refusal) *Problem {
	return problem(http.StatusForbidden, r.Kind, "Approval refused", r.Detail)
}

// reviewView is GET .../review: the version's review as a reviewer needs
// it, with the lint findings and the breaking-change diff governance
// computed (Report's fields are inlined).
type reviewView struct {
	API       string           `json:"api"`
	Version   string           `json:"version"`
	State     model.State      `json:"state"`
	Author    string           `json:"author"`
	CoAuthors []model.CoAuthor `json:"co_authors"`
	// Round is the current review round (submissions so far).
	Round    int                  `json:"round"`
	Settings model.ReviewSettings `json:"settings"`
	// Approvals are those of the current round that count.
	Approvals         []model.ReviewEvent `json:"approvals"`
	ApprovalsRequired int                 `json:"approvals_required"`
	// ChangesRequested and Comments span every round, oldest first.
	ChangesRequested []model.ReviewEvent   `json:"changes_requested"`
	Comments         []model.ReviewEvent   `json:"comments"`
	Scheduled        *model.ReviewSchedule `json:"scheduled"`
	*lifecycle.Report
}

func (s *Server) getReview(w http.ResponseWriter, r *http.Request, p *principal) error {
	var out reviewView
	err := s.st.View(r.Context(), func(tx store.Tx) error {
		_, v, err := loadVersion(tx, p, r)
		if err != nil {
			return err
		}
		st, err := review.Load(tx, v)
		if err != nil {
			return err
		}
		out = reviewView{API: v.APIName, Version: v.Label, State: v.State, Author: v.Author, CoAuthors: st.CoAuthors, Round: st.Round,
			Settings: st.Settings, ApprovalsRequired: st.Settings.ApprovalsRequired, Approvals: []model.ReviewEvent{},
			ChangesRequested: []model.ReviewEvent{}, Comments: []model.ReviewEvent{}}
		// A draft's last round ended (changes requested or withdrawn): its
		// approvals no longer count. Past review, they are who approved.
		if v.State != model.StateDraft {
			out.Approvals = st.Approvals(v)
		}
		for _, e := range st.Events {
			switch e.Kind {
			case model.ReviewComment:
				out.Comments = append(out.Comments, e)
			case model.ReviewChangesRequested:
				out.ChangesRequested = append(out.ChangesRequested, e)
			}
		}
		if sc, err := tx.GetReviewSchedule(p.tenant, v.ID); err == nil {
			out.Scheduled = sc
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		out.Report, err = lifecycle.ReviewReport(tx, v)
		return err
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

// reviewableVersion is what an approval or a change request starts with:
// the version named in the path, locked (lockedVersion), in review, with
// its review state, and the caller eligible to review it.
func reviewableVersion(tx store.Tx, p *principal, r *http.Request) (*model.Version, *review.State, error) {
	v, err := lockedVersion(tx, p, r)
	if err != nil {
		return nil, nil, err
	}
	if v.State != model.StateInReview {
		return nil, nil, notInReview(v)
	}
	st, err := review.Load(tx, v)
	if err != nil {
		return nil, nil, err
	}
	if ref := review.Eligible(p.op, p.actor, v, st.CoAuthors, st.Settings); ref != nil {
		return nil, nil, refusalProblem(ref)
	}
	return v, st, nil
}

// lockedVersion loads the version named in the path and takes its row
// lock, then reads it again: every review step of one version sees the
// steps committed before it (two last approvals cannot both miss each
// other, nor both publish).
func lockedVersion(tx store.Tx, p *principal, r *http.Request) (*model.Version, error) {
	_, v, err := loadVersion(tx, p, r)
	if err != nil {
		return nil, err
	}
	if err := tx.LockVersion(p.tenant, v.ID); err != nil {
		return nil, err
	}
	return tx.GetVersion(p.tenant, v.APIID, v.Label)
}
