package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/fleetgate/fleetgate/internal/model"
)

// defaultAuditLimit keeps `audit list` from paging through a whole log by
// accident; --limit 0 asks for everything.
const defaultAuditLimit = 100

// errAuditBroken makes `audit verify` exit non-zero, so that a cron job or CI
// step notices tampering without parsing the output.
var errAuditBroken = errors.New("audit log verification failed: at least one chain is broken")

func (a *app) auditCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Read and verify the hash-chained audit log"}

	var page pageOpts
	var actor, action, objectType, objectID, since, until string
	list := &cobra.Command{
		Use:   "list",
		Short: "List audit records, oldest first",
		Long: "List audit records, oldest first. --since and --until take an RFC 3339 time\n" +
			"or a duration back from now, such as 24h.",
		Args: cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, s *session, _ []string) error {
			now := time.Now()
			sinceT, err := parseWhen("since", since, now)
			if err != nil {
				return err
			}
			untilT, err := parseWhen("until", until, now)
			if err != nil {
				return err
			}
			if page.after != "" {
				if n, err := strconv.ParseInt(page.after, 10, 64); err != nil || n < 0 {
					return fmt.Errorf("invalid --after %q: want a sequence number", page.after)
				}
			}
			q := url.Values{
				"actor": {actor}, "action": {action}, "object_type": {objectType},
				"object_id": {objectID}, "since": {sinceT}, "until": {untilT},
			}
			res, err := s.list(ctx, "/audit", q, page)
			if err != nil {
				return err
			}
			return s.printList(res, func() error {
				items, err := decodeItems[model.AuditRecord](res.Items)
				if err != nil {
					return err
				}
				t := newTable(s.stdout, "SEQ", "TIME", "ACTOR", "ACTION", "OBJECT")
				for _, x := range items {
					obj := x.ObjectType
					if x.ObjectID != "" {
						obj += " " + x.ObjectID
					}
					t.row(strconv.FormatInt(x.Seq, 10), fmtTime(x.At), x.Actor, x.Action, obj)
				}
				return t.flush()
			})
		}),
	}
	f := list.Flags()
	f.StringVar(&actor, "actor", "", "only records by this actor (tenant/operator)")
	f.StringVar(&action, "action", "", "only this action, e.g. version.transition")
	f.StringVar(&objectType, "object-type", "", "only this object type, e.g. version")
	f.StringVar(&objectID, "object-id", "", "only this object, e.g. vehicles/v1")
	f.StringVar(&since, "since", "", "only records at or after this time")
	f.StringVar(&until, "until", "", "only records before this time")
	addPageFlags(list, &page, defaultAuditLimit, "records")

	verify := &cobra.Command{
		Use:   "verify",
		Short: "Verify the audit hash chains; exits non-zero when one is broken",
		Args:  cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, s *session, _ []string) error {
			var ans struct {
				OK      bool  `json:"ok"`
				Checked int64 `json:"checked"`
				Chains  []struct {
					Tenant  string `json:"tenant"`
					Checked int64  `json:"checked"`
					HeadSeq int64  `json:"head_seq"`
					Broken  *struct {
						Tenant string `json:"tenant"`
						Seq    int64  `json:"seq"`
						Reason string `json:"reason"`
					} `json:"broken"`
				} `json:"chains"`
			}
			raw, err := s.call(ctx, http.MethodGet, "/audit/verify", nil, &ans)
			if err != nil {
				return err
			}
			err = s.emit(raw, func() error {
				t := newTable(s.stdout, "TENANT", "CHECKED", "HEAD", "STATUS")
				for _, c := range ans.Chains {
					status := "ok"
					if c.Broken != nil {
						status = fmt.Sprintf("BROKEN at seq %d: %s", c.Broken.Seq, sanitize(c.Broken.Reason))
					}
					t.row(c.Tenant, strconv.FormatInt(c.Checked, 10), strconv.FormatInt(c.HeadSeq, 10), status)
				}
				if err := t.flush(); err != nil {
					return err
				}
				if ans.OK {
					_, err := fmt.Fprintf(s.stdout, "Audit log intact: %d records checked in %d chains.\n", ans.Checked, len(ans.Chains))
					return err
				}
				return nil
			})
			if err != nil {
				return err
			}
			if !ans.OK {
				return errAuditBroken
			}
			return nil
		}),
	}

	cmd.AddCommand(list, verify)
	return cmd
}

// parseWhen accepts an RFC 3339 time or a duration back from now, and
// returns RFC 3339 for the query ("" for "").
func parseWhen(flag, v string, now time.Time) (string, error) {
	if v == "" {
		return "", nil
	}
	if _, err := time.Parse(time.RFC3339, v); err == nil {
		return v, nil
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return now.Add(-d).UTC().Format(time.RFC3339), nil
	}
	return "", fmt.Errorf("invalid --%s %q: want an RFC 3339 time (2026-01-31T00:00:00Z) or a duration such as 24h", flag, v)
}
