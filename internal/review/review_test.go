package review

import (
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/internal/model"
)

func TestEligible(t *testing.T) {
	v := &model.Version{TenantID: "acme", APIName: "meters", Label: "v1", Author: "acme/ann"}
	cos := []model.CoAuthor{{Actor: "acme/carl"}}
	reviewer := func(name string, roles ...model.Role) *model.Operator {
		if roles == nil {
			roles = []model.Role{model.RoleReviewer}
		}
		return &model.Operator{Name: name, TenantID: "acme", Roles: roles}
	}
	named := model.ReviewSettings{ApprovalsRequired: 1, Approvers: []string{"rita"}}
	anyone := model.DefaultReviewSettings("acme")
	tests := []struct {
		name  string
		op    *model.Operator
		actor string
		set   model.ReviewSettings
		want  string // refusal kind, "" when eligible
	}{
		{"a reviewer", reviewer("rob"), "acme/rob", anyone, ""},
		{"an admin holds the reviewer role", reviewer("boss", model.RoleAdmin), "acme/boss", anyone, ""},
		{"the author, even with the role", reviewer("ann"), "acme/ann", anyone, KindSelfApproval},
		{"a co-author", reviewer("carl"), "acme/carl", anyone, KindSelfApproval},
		{"no reviewer role", reviewer("olga", model.RoleOperator), "acme/olga", anyone, KindNotApprover},
		{"a named approver", reviewer("rita"), "acme/rita", named, ""},
		{"a reviewer not named", reviewer("rob"), "acme/rob", named, KindNotApprover},
		{"the same name in another tenant", reviewer("rita", model.RoleAdmin), "default/rita", named, KindNotApprover},
		{"the author although named", reviewer("ann"), "acme/ann", model.ReviewSettings{ApprovalsRequired: 1, Approvers: []string{"ann"}}, KindSelfApproval},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Eligible(tc.op, tc.actor, v, cos, tc.set)
			switch {
			case tc.want == "" && got != nil:
				t.Fatalf("refused: %v", got)
			case tc.want != "" && (got == nil || got.Kind != tc.want):
				t.Fatalf("got %v, want %s", got, tc.want)
			}
		})
	}
}

func TestCountedAndPublishAt(t *testing.T) {
	v := &model.Version{TenantID: "acme", Author: "acme/ann"}
	t1, t2 := time.Date(2027, 1, 1, 9, 0, 0, 0, time.UTC), time.Date(2027, 1, 2, 9, 0, 0, 0, time.UTC)
	ev := func(round int, kind model.ReviewEventKind, actor string, at *time.Time) model.ReviewEvent {
		return model.ReviewEvent{Round: round, Kind: kind, Actor: actor, PublishAt: at}
	}
	events := []model.ReviewEvent{
		ev(1, model.ReviewApproval, "acme/rita", &t2), // an earlier round
		ev(2, model.ReviewApproval, "acme/rita", &t1),
		ev(2, model.ReviewComment, "acme/rob", nil),
		ev(2, model.ReviewApproval, "acme/carl", nil), // declared co-author after approving
		ev(2, model.ReviewApproval, "acme/rob", nil),
	}
	cos := []model.CoAuthor{{Actor: "acme/carl"}}
	tests := []struct {
		name  string
		round int
		set   model.ReviewSettings
		want  []string
		at    *time.Time
	}{
		{"round 2, any reviewer", 2, model.DefaultReviewSettings("acme"), []string{"acme/rita", "acme/rob"}, &t1},
		{"round 1 only counts its own", 1, model.DefaultReviewSettings("acme"), []string{"acme/rita"}, &t2},
		{"named approvers re-judged when counted", 2, model.ReviewSettings{Approvers: []string{"rob"}}, []string{"acme/rob"}, nil},
		{"a round without approvals", 3, model.DefaultReviewSettings("acme"), nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Counted(events, tc.round, v, cos, tc.set)
			if len(got) != len(tc.want) {
				t.Fatalf("counted %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i].Actor != tc.want[i] {
					t.Fatalf("counted %v, want %v", got, tc.want)
				}
			}
			// The latest requested time wins: nobody gets it earlier than asked.
			at := PublishAt(got)
			if (at == nil) != (tc.at == nil) || (at != nil && !at.Equal(*tc.at)) {
				t.Fatalf("publish at %v, want %v", at, tc.at)
			}
		})
	}
}
