package model

import "time"

// CoAuthor is an operator other than the author who shaped a version: by
// editing its draft (Source "edit") or by being declared (Source
// "declared"). Co-authors, like the author, may not approve the version:
// separation of duties means someone who did not write it reviews it.
type CoAuthor struct {
	TenantID  string    `json:"tenant"`
	VersionID string    `json:"version_id"`
	Actor     string    `json:"actor"` // "tenant/name", as in Version.Author
	Source    string    `json:"source"`
	AddedBy   string    `json:"added_by"`
	AddedAt   time.Time `json:"added_at"`
}

// Co-author sources.
const (
	CoAuthorEdit     = "edit"
	CoAuthorDeclared = "declared"
)

// ReviewSettings are a tenant's review rules. Approvers, when not empty,
// narrows who may approve to the named operators (each must also hold the
// reviewer role); empty means any reviewer.
type ReviewSettings struct {
	TenantID          string    `json:"tenant"`
	ApprovalsRequired int       `json:"approvals_required"`
	Approvers         []string  `json:"approvers"`
	UpdatedBy         string    `json:"updated_by,omitempty"`
	UpdatedAt         time.Time `json:"updated_at,omitzero"`
}

// DefaultReviewSettings are the rules of a tenant that never set its own:
// one approval by any reviewer.
func DefaultReviewSettings(tenant string) ReviewSettings {
	return ReviewSettings{TenantID: tenant, ApprovalsRequired: 1, Approvers: []string{}}
}

// ReviewEventKind is what a review event records.
type ReviewEventKind string

const (
	ReviewComment          ReviewEventKind = "comment"
	ReviewApproval         ReviewEventKind = "approval"
	ReviewChangesRequested ReviewEventKind = "changes_requested"
)

// ReviewEvent is one step of a version's review. Round numbers the
// submissions (the n-th move to in_review is round n; 0 before the first):
// approvals count only in the round they were given in.
type ReviewEvent struct {
	ID        string          `json:"id"`
	TenantID  string          `json:"tenant"`
	VersionID string          `json:"version_id"`
	Round     int             `json:"round"`
	Kind      ReviewEventKind `json:"kind"`
	Actor     string          `json:"actor"`
	Comment   string          `json:"comment,omitempty"`
	// Operation and Pointer anchor a comment to an operationId and/or an
	// RFC 6901 pointer into the version's spec document.
	Operation string     `json:"operation,omitempty"`
	Pointer   string     `json:"pointer,omitempty"`
	PublishAt *time.Time `json:"publish_at,omitempty"`
	At        time.Time  `json:"at"`
}

// ReviewSchedule is an approved version waiting for its publication time.
// It names the round it was approved in: a schedule of an earlier round is
// stale and never publishes.
type ReviewSchedule struct {
	TenantID    string    `json:"tenant"`
	VersionID   string    `json:"version_id"`
	APIID       string    `json:"api_id"`
	Label       string    `json:"version"`
	Round       int       `json:"round"`
	PublishAt   time.Time `json:"publish_at"`
	ScheduledBy string    `json:"scheduled_by"`
	CreatedAt   time.Time `json:"created_at"`
}
