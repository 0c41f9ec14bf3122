package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/fleetgate/fleetgate/internal/model"
)

// maxSpecFile bounds a spec document read from disk; the server refuses
// larger bodies anyway, and this gives the clearer message.
const maxSpecFile = 5 << 20

func (a *app) versionsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "versions", Short: "Manage API versions and their lifecycle"}
	var page pageOpts
	list := &cobra.Command{
		Use: "list API", Short: "List the versions of an API", Args: cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, s *session, args []string) error {
			path, err := escapePath("apis", args[0], "versions")
			if err != nil {
				return err
			}
			res, err := s.list(ctx, path, nil, page)
			if err != nil {
				return err
			}
			return s.printList(res, func() error {
				items, err := decodeItems[model.Version](res.Items)
				if err != nil {
					return err
				}
				t := newTable(s.stdout, "VERSION", "STATE", "AUTHOR", "SPEC", "UPDATED")
				for _, x := range items {
					t.row(x.Label, string(x.State), x.Author, specSummary(x.Spec), fmtTime(x.UpdatedAt))
				}
				return t.flush()
			})
		}),
	}
	addPageFlags(list, &page, 0, "versions")

	var showSpec bool
	get := &cobra.Command{
		Use: "get API VERSION", Short: "Show a version", Args: cobra.ExactArgs(2),
		RunE: a.run(func(ctx context.Context, s *session, args []string) error {
			path, err := escapePath("apis", args[0], "versions", args[1])
			if err != nil {
				return err
			}
			var v model.Version
			raw, err := s.call(ctx, http.MethodGet, path, nil, &v)
			if err != nil {
				return err
			}
			if showSpec && !s.json {
				if v.Spec == nil {
					return fmt.Errorf("version %s/%s has no spec document", sanitize(args[0]), sanitize(args[1]))
				}
				// Verbatim, so that `> spec.yaml` round-trips the document.
				_, err := io.WriteString(s.stdout, v.Spec.Content)
				return err
			}
			return s.emit(raw, func() error { return printVersion(s, &v) })
		}),
	}
	get.Flags().BoolVar(&showSpec, "show-spec", false, "print only the spec document, verbatim")

	var cf contentFlags
	create := &cobra.Command{
		Use:   "create API VERSION --spec FILE [--upstream URL ...] [--bindings FILE] [--policy FILE]",
		Short: "Create a draft version from a spec document",
		Long: "Create a draft version. --spec - reads the document from stdin. Bindings are\n" +
			"extracted from the spec by the server unless --bindings gives them. --policy\n" +
			"gives the data-plane policy (auth, rules, rate limits, per-operation identity\n" +
			"bindings). Bindings and policy files are JSON or YAML, checked strictly\n" +
			"before anything is sent.",
		Args: cobra.ExactArgs(2),
		RunE: a.run(func(ctx context.Context, s *session, args []string) error {
			path, err := escapePath("apis", args[0], "versions")
			if err != nil {
				return err
			}
			body, err := cf.body(s.cmd)
			if err != nil {
				return err
			}
			body.Version = args[1]
			var v model.Version
			raw, err := s.call(ctx, http.MethodPost, path, body, &v)
			if err != nil {
				return cf.locate(err)
			}
			return s.done(raw, "Created version %s/%s (%s, spec %s).", sanitize(args[0]), sanitize(args[1]), cell(string(v.State)), specSummary(v.Spec))
		}),
	}
	cf.add(create, "OpenAPI or AsyncAPI document, - for stdin (required)", "upstream target URL, repeatable")
	_ = create.MarkFlagRequired("spec")

	var uf contentFlags
	update := &cobra.Command{
		Use:   "update API VERSION [--spec FILE] [--upstream URL ...] [--bindings FILE] [--policy FILE]",
		Short: "Change a draft version's spec, upstream, bindings or policy",
		Long: "Change a draft version; what is not given stays as it is. Only drafts can be\n" +
			"changed: once submitted for review, a version's content is frozen.\n\n" +
			"--upstream replaces all upstream targets (repeat it for each). A new --spec\n" +
			"without --bindings makes the server extract the bindings from it again.\n" +
			"--policy replaces the whole policy; a file holding {} removes it.",
		Args: cobra.ExactArgs(2),
		RunE: a.run(func(ctx context.Context, s *session, args []string) error {
			path, err := escapePath("apis", args[0], "versions", args[1])
			if err != nil {
				return err
			}
			body, err := uf.body(s.cmd)
			if err != nil {
				return err
			}
			changed := body.changed()
			if len(changed) == 0 {
				return errors.New("nothing to update: give --spec, --upstream, --bindings or --policy")
			}
			var v model.Version
			raw, err := s.call(ctx, http.MethodPatch, path, body, &v)
			if err != nil {
				return uf.locate(err)
			}
			return s.done(raw, "Updated version %s/%s (%s): %s.", sanitize(args[0]), sanitize(args[1]), cell(string(v.State)), strings.Join(changed, ", "))
		}),
	}
	uf.add(update, "new OpenAPI or AsyncAPI document, - for stdin", "upstream target URL, repeatable; replaces all targets")

	var tr struct {
		To        string `json:"to"`
		Reason    string `json:"reason"`
		Sunset    string `json:"sunset,omitempty"`
		Successor string `json:"successor,omitempty"`
	}
	transition := &cobra.Command{
		Use:   "transition API VERSION --to STATE --reason TEXT",
		Short: "Move a version through its lifecycle",
		Long: "Move a version to another lifecycle state: draft, in_review, published,\n" +
			"deprecated, retired or blocked. The server enforces which moves are legal\n" +
			"and which role each needs; the reason is kept in the audit log.",
		Args: cobra.ExactArgs(2),
		RunE: a.run(func(ctx context.Context, s *session, args []string) error {
			path, err := escapePath("apis", args[0], "versions", args[1], "transitions")
			if err != nil {
				return err
			}
			if tr.Sunset != "" {
				if _, err := time.Parse(time.RFC3339, tr.Sunset); err != nil {
					return fmt.Errorf("invalid --sunset %q: want RFC 3339, e.g. 2027-01-31T00:00:00Z", tr.Sunset)
				}
			}
			var ans struct {
				Version    model.Version    `json:"version"`
				Transition model.Transition `json:"transition"`
			}
			raw, err := s.call(ctx, http.MethodPost, path, tr, &ans)
			if err != nil {
				return err
			}
			return s.done(raw, "%s/%s: %s -> %s.", sanitize(args[0]), sanitize(args[1]),
				cell(string(ans.Transition.From)), cell(string(ans.Transition.To)))
		}),
	}
	transition.Flags().StringVar(&tr.To, "to", "", "target state (required)")
	transition.Flags().StringVar(&tr.Reason, "reason", "", "why, for the audit log (required)")
	transition.Flags().StringVar(&tr.Sunset, "sunset", "", "sunset date when deprecating (RFC 3339)")
	transition.Flags().StringVar(&tr.Successor, "successor", "", "version that replaces this one")
	_ = transition.MarkFlagRequired("to")
	_ = transition.MarkFlagRequired("reason")

	var histPage pageOpts
	history := &cobra.Command{
		Use: "history API VERSION", Short: "Show the lifecycle transitions of a version", Args: cobra.ExactArgs(2),
		RunE: a.run(func(ctx context.Context, s *session, args []string) error {
			path, err := escapePath("apis", args[0], "versions", args[1], "transitions")
			if err != nil {
				return err
			}
			res, err := s.list(ctx, path, nil, histPage)
			if err != nil {
				return err
			}
			return s.printList(res, func() error {
				items, err := decodeItems[model.Transition](res.Items)
				if err != nil {
					return err
				}
				t := newTable(s.stdout, "AT", "FROM", "TO", "ACTOR", "REASON")
				for _, x := range items {
					t.row(fmtTime(x.At), string(x.From), string(x.To), x.Actor, x.Reason)
				}
				return t.flush()
			})
		}),
	}
	addPageFlags(history, &histPage, 0, "transitions")

	del := a.deleteCmd("version", "API VERSION", func(args []string) (string, error) {
		return escapePath("apis", args[0], "versions", args[1])
	})
	del.Args = cobra.ExactArgs(2)
	cmd.AddCommand(list, get, create, update, transition, history, del)
	return cmd
}

// specSummary is "openapi 3.1.0", or "-" without a spec.
func specSummary(sp *model.Spec) string {
	if sp == nil || (sp.Format == "" && sp.Version == "") {
		return "-"
	}
	return strings.TrimSpace(sanitize(sp.Format + " " + sp.Version))
}

func printVersion(s *session, v *model.Version) error {
	fields := []field{
		{"API", qualified(v.TenantID, v.APIName)}, {"Version", v.Label}, {"ID", v.ID},
		{"State", string(v.State)}, {"Author", v.Author}, {"Spec", specSummary(v.Spec)},
		{"Upstream", strings.Join(v.Upstream.Targets, ", ")},
		{"Policy", policySummary(&v.Policy)},
	}
	if b := v.Bindings.HTTP; b != nil {
		fields = append(fields, field{"HTTP", fmt.Sprintf("%s (%d operations)", b.BasePath, len(b.Operations))})
	}
	if b := v.Bindings.MQTT; b != nil {
		fields = append(fields, field{"MQTT", fmt.Sprintf("%d channels", len(b.Channels))})
	}
	if b := v.Bindings.CoAP; b != nil {
		fields = append(fields, field{"CoAP", fmt.Sprintf("%d resources", len(b.Resources))})
	}
	if v.Sunset != nil {
		fields = append(fields, field{"Sunset", fmtTime(*v.Sunset)})
	}
	if v.Successor != "" {
		fields = append(fields, field{"Successor", v.Successor})
	}
	fields = append(fields, field{"Created", fmtTime(v.CreatedAt)}, field{"Updated", fmtTime(v.UpdatedAt)})
	return printFields(s.stdout, fields...)
}

// readSpec reads a spec document from a file or, for "-", from stdin.
func readSpec(path string, stdin io.Reader) (string, error) {
	var r io.Reader
	name := path
	if path == "-" {
		r, name = stdin, "stdin"
	} else {
		f, err := os.Open(path)
		if err != nil {
			return "", fmt.Errorf("reading spec: %w", err)
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, maxSpecFile+1))
	if err != nil {
		return "", fmt.Errorf("reading spec %s: %w", name, err)
	}
	if len(data) > maxSpecFile {
		return "", fmt.Errorf("spec %s is larger than %d bytes", name, maxSpecFile)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return "", fmt.Errorf("spec %s is empty", name)
	}
	return string(data), nil
}

// position converts a byte offset into a 1-based line and column.
func position(b []byte, off int64) (line, col int) {
	off = min(max(off, 0), int64(len(b)))
	line, col = 1, 1
	for _, c := range b[:off] {
		if c == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return line, col
}
