package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/fleetgate/fleetgate/internal/model"
)

// reviewAnswer is GET .../review as the CLI prints it; -o json shows the
// server's answer whole.
type reviewAnswer struct {
	API               string                `json:"api"`
	Version           string                `json:"version"`
	State             model.State           `json:"state"`
	Author            string                `json:"author"`
	CoAuthors         []model.CoAuthor      `json:"co_authors"`
	Round             int                   `json:"round"`
	Approvals         []model.ReviewEvent   `json:"approvals"`
	ApprovalsRequired int                   `json:"approvals_required"`
	ChangesRequested  []model.ReviewEvent   `json:"changes_requested"`
	Comments          []model.ReviewEvent   `json:"comments"`
	Scheduled         *model.ReviewSchedule `json:"scheduled"`
	Lint              []struct {
		Rule    string `json:"rule"`
		Level   string `json:"level"`
		Message string `json:"message"`
		Pointer string `json:"pointer"`
		Line    int    `json:"line"`
	} `json:"lint"`
	LintErrors int    `json:"lint_errors"`
	SpecError  string `json:"spec_error"`
	Diff       *struct {
		Against string `json:"against"`
		Changes []struct {
			Kind     string `json:"kind"`
			Breaking bool   `json:"breaking"`
			Pointer  string `json:"pointer"`
			Message  string `json:"message"`
		} `json:"changes"`
		Breaking      bool `json:"breaking"`
		RequiresMajor bool `json:"requires_major"`
	} `json:"diff"`
}

// commentFlags are the text and optional anchor of a comment.
type commentFlags struct {
	Comment   string `json:"comment"`
	Operation string `json:"operation,omitempty"`
	Pointer   string `json:"pointer,omitempty"`
}

func (c *commentFlags) add(cmd *cobra.Command, what string) {
	cmd.Flags().StringVarP(&c.Comment, "message", "m", "", what)
	cmd.Flags().StringVar(&c.Operation, "operation", "", "anchor: an operationId of the version")
	cmd.Flags().StringVar(&c.Pointer, "pointer", "", "anchor: a JSON pointer into the spec, e.g. /paths/~1meters~1{id}/get")
}

func (a *app) reviewCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "review", Short: "Review versions: show, comment, approve, request changes; review settings",
		Long: "A version in review is approved by reviewers who are neither its author nor a\n" +
			"co-author. When the tenant's number of approvals is reached the version is\n" +
			"published at once (through the usual governance checks) or at --publish-at."}
	versionPath := func(args []string, tail ...string) (string, error) {
		return escapePath(append([]string{"apis", args[0], "versions", args[1]}, tail...)...)
	}

	show := &cobra.Command{
		Use: "show API VERSION", Short: "Show a version's review: approvals, comments, lint findings, breaking changes", Args: cobra.ExactArgs(2),
		RunE: a.run(func(ctx context.Context, s *session, args []string) error {
			path, err := versionPath(args, "review")
			if err != nil {
				return err
			}
			var rv reviewAnswer
			raw, err := s.call(ctx, http.MethodGet, path, nil, &rv)
			if err != nil {
				return err
			}
			return s.emit(raw, func() error { return printReview(s, &rv) })
		}),
	}

	var cf commentFlags
	comment := &cobra.Command{
		Use: "comment API VERSION -m TEXT [--operation ID] [--pointer PTR]", Short: "Comment on a version", Args: cobra.ExactArgs(2),
		RunE: a.run(func(ctx context.Context, s *session, args []string) error {
			path, err := versionPath(args, "review", "comments")
			if err != nil {
				return err
			}
			var ev model.ReviewEvent
			raw, err := s.call(ctx, http.MethodPost, path, cf, &ev)
			if err != nil {
				return err
			}
			return s.done(raw, "Commented on %s/%s (review round %d).", sanitize(args[0]), sanitize(args[1]), ev.Round)
		}),
	}
	cf.add(comment, "the comment (required)")
	_ = comment.MarkFlagRequired("message")

	var ap struct {
		Comment   string `json:"comment,omitempty"`
		PublishAt string `json:"publish_at,omitempty"`
	}
	approve := &cobra.Command{
		Use:   "approve API VERSION [-m TEXT] [--publish-at TIME]",
		Short: "Approve a version in review",
		Long: "Approve a version in review. The approval that reaches the tenant's count\n" +
			"publishes it at once, or at --publish-at (RFC 3339, in the future). If a\n" +
			"governance check refuses the publication, the approval is kept and the\n" +
			"command says why; the exit status is then non-zero.",
		Args: cobra.ExactArgs(2),
		RunE: a.run(func(ctx context.Context, s *session, args []string) error {
			path, err := versionPath(args, "review", "approve")
			if err != nil {
				return err
			}
			if ap.PublishAt != "" {
				if _, err := time.Parse(time.RFC3339, ap.PublishAt); err != nil {
					return fmt.Errorf("invalid --publish-at %q: want RFC 3339, e.g. 2027-01-31T09:00:00Z", ap.PublishAt)
				}
			}
			var ans struct {
				Round             int                   `json:"round"`
				Approvals         int                   `json:"approvals"`
				ApprovalsRequired int                   `json:"approvals_required"`
				Published         bool                  `json:"published"`
				Scheduled         *model.ReviewSchedule `json:"scheduled"`
				PublishRefused    *struct {
					Check  string `json:"check"`
					Detail string `json:"detail"`
				} `json:"publish_refused"`
			}
			raw, err := s.call(ctx, http.MethodPost, path, ap, &ans)
			if err != nil {
				return err
			}
			name := sanitize(args[0]) + "/" + sanitize(args[1])
			msg := fmt.Sprintf("Approved %s (review round %d: %d of %d approvals).", name, ans.Round, ans.Approvals, ans.ApprovalsRequired)
			switch {
			case ans.Published:
				msg += " Published."
			case ans.Scheduled != nil:
				msg += " Publication scheduled for " + fmtTime(ans.Scheduled.PublishAt) + "."
			case ans.PublishRefused != nil:
				if err := s.done(raw, "%s", msg); err != nil {
					return err
				}
				return fmt.Errorf("%s was not published: %s: %s", name, sanitize(ans.PublishRefused.Check), sanitize(ans.PublishRefused.Detail))
			}
			return s.done(raw, "%s", msg)
		}),
	}
	approve.Flags().StringVarP(&ap.Comment, "message", "m", "", "a comment with the approval")
	approve.Flags().StringVar(&ap.PublishAt, "publish-at", "", "publish at this time (RFC 3339) instead of at once")

	var rc commentFlags
	requestChanges := &cobra.Command{
		Use:   "request-changes API VERSION -m TEXT [--operation ID] [--pointer PTR]",
		Short: "Send a version in review back to draft, with a comment",
		Args:  cobra.ExactArgs(2),
		RunE: a.run(func(ctx context.Context, s *session, args []string) error {
			path, err := versionPath(args, "review", "request-changes")
			if err != nil {
				return err
			}
			if strings.TrimSpace(rc.Comment) == "" {
				return errors.New("-m/--message must say what to change")
			}
			raw, err := s.call(ctx, http.MethodPost, path, rc, nil)
			if err != nil {
				return err
			}
			return s.done(raw, "Requested changes to %s/%s; it is a draft again and its approvals no longer count.", sanitize(args[0]), sanitize(args[1]))
		}),
	}
	rc.add(requestChanges, "what to change (required)")
	_ = requestChanges.MarkFlagRequired("message")

	coAuthors := &cobra.Command{
		Use: "co-authors API VERSION [--add OPERATOR]", Short: "List a version's co-authors, or declare one", Args: cobra.ExactArgs(2),
	}
	var addCo string
	coAuthors.Flags().StringVar(&addCo, "add", "", "declare this operator a co-author (who then may not approve)")
	coAuthors.RunE = a.run(func(ctx context.Context, s *session, args []string) error {
		path, err := versionPath(args, "co-authors")
		if err != nil {
			return err
		}
		if addCo != "" {
			raw, err := s.call(ctx, http.MethodPost, path, map[string]string{"operator": addCo}, nil)
			if err != nil {
				return err
			}
			return s.done(raw, "Declared %s a co-author of %s/%s.", sanitize(addCo), sanitize(args[0]), sanitize(args[1]))
		}
		var ans struct {
			Items []model.CoAuthor `json:"items"`
		}
		raw, err := s.call(ctx, http.MethodGet, path, nil, &ans)
		if err != nil {
			return err
		}
		return s.emit(raw, func() error {
			t := newTable(s.stdout, "CO-AUTHOR", "SOURCE", "ADDED BY", "ADDED")
			for _, c := range ans.Items {
				t.row(c.Actor, c.Source, c.AddedBy, fmtTime(c.AddedAt))
			}
			return t.flush()
		})
	})

	cmd.AddCommand(show, comment, approve, requestChanges, coAuthors, a.reviewSettingsCmd())
	return cmd
}

func (a *app) reviewSettingsCmd() *cobra.Command {
	get := a.run(func(ctx context.Context, s *session, _ []string) error {
		var set model.ReviewSettings
		raw, err := s.call(ctx, http.MethodGet, "/review-settings", nil, &set)
		if err != nil {
			return err
		}
		return s.emit(raw, func() error { return printReviewSettings(s, &set) })
	})
	cmd := &cobra.Command{Use: "settings", Short: "Show the tenant's review settings (set: change them)", Args: cobra.NoArgs, RunE: get}
	var approvals int
	var approvers []string
	set := &cobra.Command{
		Use:   "set --approvals N [--approver NAME ...]",
		Short: "Replace the tenant's review settings (admins)",
		Long: "Replace the tenant's review settings: how many approvals a version needs, and\n" +
			"optionally which reviewers may approve (repeat --approver; none: any reviewer).",
		Args: cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, s *session, _ []string) error {
			if approvals < 1 {
				return errors.New("--approvals must be at least 1")
			}
			var out model.ReviewSettings
			raw, err := s.call(ctx, http.MethodPut, "/review-settings", map[string]any{"approvals_required": approvals, "approvers": approvers}, &out)
			if err != nil {
				return err
			}
			return s.emit(raw, func() error { return printReviewSettings(s, &out) })
		}),
	}
	set.Flags().IntVar(&approvals, "approvals", 0, "approvals a version needs (required)")
	set.Flags().StringArrayVar(&approvers, "approver", nil, "operator allowed to approve, repeatable (none: any reviewer)")
	_ = set.MarkFlagRequired("approvals")
	show := &cobra.Command{Use: "get", Short: "Show the tenant's review settings", Args: cobra.NoArgs, RunE: get}
	cmd.AddCommand(show, set)
	return cmd
}

func printReviewSettings(s *session, set *model.ReviewSettings) error {
	who := "any reviewer"
	if len(set.Approvers) > 0 {
		who = strings.Join(set.Approvers, ", ")
	}
	return printFields(s.stdout, field{"Tenant", set.TenantID}, field{"Approvals required", strconv.Itoa(set.ApprovalsRequired)},
		field{"Approvers", who}, field{"Updated by", set.UpdatedBy}, field{"Updated", fmtTime(set.UpdatedAt)})
}

func printReview(s *session, rv *reviewAnswer) error {
	cos := make([]string, len(rv.CoAuthors))
	for i, c := range rv.CoAuthors {
		cos[i] = c.Actor
	}
	by := make([]string, len(rv.Approvals))
	for i, e := range rv.Approvals {
		by[i] = e.Actor
	}
	approvals := fmt.Sprintf("%d of %d", len(rv.Approvals), rv.ApprovalsRequired)
	if len(by) > 0 {
		approvals += " (" + strings.Join(by, ", ") + ")"
	}
	scheduled := "-"
	if rv.Scheduled != nil {
		scheduled = fmtTime(rv.Scheduled.PublishAt) + " (by " + rv.Scheduled.ScheduledBy + ")"
	}
	lint := fmt.Sprintf("%d finding(s), %d error(s)", len(rv.Lint), rv.LintErrors)
	if rv.SpecError != "" {
		lint = "spec does not parse: " + rv.SpecError
	}
	diff := "no predecessor"
	if d := rv.Diff; d != nil {
		diff = fmt.Sprintf("against %s: %d change(s)", d.Against, len(d.Changes))
		if d.Breaking {
			diff += ", breaking"
		}
		if d.RequiresMajor {
			diff += " (needs a new major)"
		}
	}
	if err := printFields(s.stdout, field{"API", rv.API}, field{"Version", rv.Version}, field{"State", string(rv.State)},
		field{"Author", rv.Author}, field{"Co-authors", strings.Join(cos, ", ")}, field{"Round", strconv.Itoa(rv.Round)},
		field{"Approvals", approvals}, field{"Scheduled", scheduled}, field{"Lint", lint}, field{"Diff", diff}); err != nil {
		return err
	}
	if len(rv.Lint) > 0 {
		fmt.Fprintln(s.stdout, "\nLint findings:")
		t := newTable(s.stdout, "LEVEL", "RULE", "LINE", "POINTER", "MESSAGE")
		for _, f := range rv.Lint {
			t.row(f.Level, f.Rule, strconv.Itoa(f.Line), f.Pointer, f.Message)
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	if rv.Diff != nil && len(rv.Diff.Changes) > 0 {
		fmt.Fprintln(s.stdout, "\nChanges against "+sanitize(rv.Diff.Against)+":")
		t := newTable(s.stdout, "BREAKING", "KIND", "POINTER", "MESSAGE")
		for _, c := range rv.Diff.Changes {
			t.row(yesNo(c.Breaking), c.Kind, c.Pointer, c.Message)
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	events := append(append([]model.ReviewEvent{}, rv.ChangesRequested...), rv.Comments...)
	sort.SliceStable(events, func(i, j int) bool { return events[i].At.Before(events[j].At) })
	if len(events) > 0 {
		fmt.Fprintln(s.stdout, "\nDiscussion:")
		t := newTable(s.stdout, "AT", "ROUND", "ACTOR", "KIND", "ANCHOR", "COMMENT")
		for _, e := range events {
			anchor := strings.TrimSpace(e.Operation + " " + e.Pointer)
			t.row(fmtTime(e.At), strconv.Itoa(e.Round), e.Actor, string(e.Kind), anchor, e.Comment)
		}
		return t.flush()
	}
	return nil
}
