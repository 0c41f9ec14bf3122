// Package cli is the client half of the fleetgate binary: commands that
// drive a fleetgate server through its admin REST API (/admin/v1). The server
// is the authority on validation and permissions; the CLI checks only what it
// can report better locally (files, flag syntax, YAML positions) and renders
// the server's problem answers readably.
package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fleetgate/fleetgate/internal/model"
)

// Commands returns the client subcommands to add to the root `fleetgate`
// command: apis, versions, apps, keys, ownerships, tenants, operators,
// tokens, audit, apply, whoami.
// Each carries the client flags (--server, --token, --tenant, --cli-config,
// -o) as persistent flags, so it does not depend on the root command
// declaring them. Errors are returned from RunE for the root command to
// print ("Error: ...") and to turn into a non-zero exit status.
func Commands(stdout, stderr io.Writer) []*cobra.Command {
	a := &app{stdout: stdout, stderr: stderr, getenv: os.Getenv, home: os.UserHomeDir}
	return a.commands()
}

// app holds what the commands share. getenv, home and httpClient are
// fields so that tests can run commands hermetically.
type app struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	home           func() (string, error)
	httpClient     *http.Client // nil: Client's default
	g              globalFlags
}

func (a *app) commands() []*cobra.Command {
	cmds := []*cobra.Command{
		a.apisCmd(), a.versionsCmd(), a.appsCmd(), a.keysCmd(), a.ownershipsCmd(),
		a.tenantsCmd(), a.operatorsCmd(), a.tokensCmd(), a.auditCmd(), a.applyCmd(), a.whoamiCmd(), a.inventoryCmd(), a.securityCmd(), a.devicesCmd(), a.caCmd(),
		a.governanceCmd(),
		a.claimsCmd(), a.externalCAsCmd(),
		a.reviewCmd(),
	}
	for _, c := range cmds {
		addGlobalFlags(c, &a.g)
		c.SetOut(a.stdout)
		c.SetErr(a.stderr)
	}
	return cmds
}

// session is one command invocation with resolved settings.
type session struct {
	client   *Client
	settings settings
	json     bool
	stdout   io.Writer
	stderr   io.Writer
	cmd      *cobra.Command
}

// run adapts fn to a cobra RunE: it resolves the settings, builds the
// client and silences usage, because from here on an error is about the
// request, not about how the command was typed.
func (a *app) run(fn func(ctx context.Context, s *session, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) (err error) {
		cmd.SilenceUsage = true
		st, warnings, err := resolveSettings(cmd.Flags(), &a.g, a.getenv, a.home)
		for _, w := range warnings {
			fmt.Fprintln(a.stderr, "warning:", w)
		}
		if err != nil {
			return err
		}
		// Last line of defence: whatever an error quotes (a mistyped
		// --server holding the token, a server echoing headers), the
		// token is not printed.
		defer func() { err = redactErr(err, st.Token) }()
		u, err := parseServer(st.Server)
		if err != nil {
			return err
		}
		if st.Token == "" {
			return fmt.Errorf("no token: set --token, %s, or token in the CLI config file", EnvToken)
		}
		if u.Scheme == "http" && !isLoopback(u.Hostname()) {
			fmt.Fprintf(a.stderr, "warning: sending the token unencrypted to %s; use https\n", u.Redacted())
		}
		s := &session{
			client:   &Client{Server: st.Server, Token: st.Token, Tenant: st.Tenant, HTTP: a.httpClient, UserAgent: "fleetgate-cli"},
			settings: st,
			json:     st.Output == "json",
			stdout:   a.stdout,
			stderr:   a.stderr,
			cmd:      cmd,
		}
		ctx := cmd.Context()
		if ctx == nil {
			ctx = context.Background()
		}
		return fn(ctx, s, args)
	}
}

// redactErr hides token in err's message, keeping err for errors.As.
func redactErr(err error, token string) error {
	if err == nil || token == "" || !strings.Contains(err.Error(), token) {
		return err
	}
	return scrubbed{err, token}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// call does one request and returns the raw answer (for -o json) after
// decoding it into out (for tables) when out is not nil.
func (s *session) call(ctx context.Context, method, path string, body, out any) (json.RawMessage, error) {
	var raw json.RawMessage
	if err := s.client.Do(ctx, method, path, body, &raw); err != nil {
		return nil, err
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return nil, fmt.Errorf("decoding answer to %s %s: %w", method, path, err)
		}
	}
	return raw, nil
}

// emit prints raw with -o json, else runs the table printer.
func (s *session) emit(raw json.RawMessage, tableFn func() error) error {
	if s.json {
		return printJSON(s.stdout, raw)
	}
	return tableFn()
}

// done prints a confirmation of a change: the server's answer with -o json,
// a sentence otherwise.
func (s *session) done(raw json.RawMessage, format string, args ...any) error {
	return s.emit(raw, func() error {
		_, err := fmt.Fprintf(s.stdout, format+"\n", args...)
		return err
	})
}

// pageOpts are the paging flags of list commands.
type pageOpts struct {
	limit int
	after string
}

func addPageFlags(cmd *cobra.Command, p *pageOpts, defLimit int, what string) {
	cmd.Flags().IntVar(&p.limit, "limit", defLimit, "show at most this many "+what+" (0: all)")
	cmd.Flags().StringVar(&p.after, "after", "", "start after this cursor (printed when a listing is cut short)")
}

// listResult is the envelope of list answers, all pages merged.
type listResult struct {
	Items []json.RawMessage `json:"items"`
	Next  string            `json:"next"`
}

// serverMaxLimit is the largest page the server accepts.
const serverMaxLimit = 1000

// list follows the "next" cursors of a list endpoint until the limit is
// reached or the listing ends, so that tables are complete by default.
func (s *session) list(ctx context.Context, path string, q url.Values, p pageOpts) (listResult, error) {
	if p.limit < 0 {
		return listResult{}, fmt.Errorf("invalid --limit %d", p.limit)
	}
	q2 := url.Values{}
	for k, v := range q {
		if len(v) > 0 && v[0] != "" {
			q2[k] = v
		}
	}
	res := listResult{Items: []json.RawMessage{}}
	after := p.after
	for {
		ask := serverMaxLimit
		if p.limit > 0 {
			ask = min(p.limit-len(res.Items), serverMaxLimit)
		}
		q2.Set("limit", strconv.Itoa(ask))
		if after != "" {
			q2.Set("after", after)
		}
		var page listResult
		if err := s.client.Do(ctx, http.MethodGet, path+"?"+q2.Encode(), nil, &page); err != nil {
			return res, err
		}
		res.Items = append(res.Items, page.Items...)
		res.Next = page.Next
		if page.Next == "" || (p.limit > 0 && len(res.Items) >= p.limit) {
			return res, nil
		}
		if len(page.Items) == 0 || page.Next == after {
			return res, fmt.Errorf("server returned a cursor that does not advance (%q) for %s", sanitize(page.Next), path)
		}
		after = page.Next
	}
}

// printList prints a listing: JSON as one merged envelope, or the table
// followed, when the listing was cut short, by a hint on stderr.
func (s *session) printList(res listResult, tableFn func() error) error {
	if s.json {
		return printJSON(s.stdout, res)
	}
	if err := tableFn(); err != nil {
		return err
	}
	if res.Next != "" {
		fmt.Fprintf(s.stderr, "(more results: add --after %s)\n", sanitize(res.Next))
	}
	return nil
}

// decodeItems decodes the raw items of a listing into T.
func decodeItems[T any](raw []json.RawMessage) ([]T, error) {
	out := make([]T, len(raw))
	for i, r := range raw {
		if err := json.Unmarshal(r, &out[i]); err != nil {
			return nil, fmt.Errorf("decoding list item %d: %w", i, err)
		}
	}
	return out, nil
}

// ---- whoami

type whoamiAnswer struct {
	Operator model.Operator `json:"operator"`
	Tenant   string         `json:"tenant"`
	System   bool           `json:"system"`
}

func (a *app) whoamiCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "whoami",
		Short: "Show the operator the token belongs to and the tenant requests act on",
		Args:  cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, s *session, _ []string) error {
			var w whoamiAnswer
			raw, err := s.call(ctx, http.MethodGet, "/whoami", nil, &w)
			if err != nil {
				return err
			}
			return s.emit(raw, func() error {
				fields := []field{
					{"Server", redactURL(s.settings.Server)},
					{"Operator", w.Operator.Name},
					{"Operator ID", w.Operator.ID},
					{"Home tenant", w.Operator.TenantID},
					{"Acting on tenant", w.Tenant},
					{"Roles", joinStrings(w.Operator.Roles)},
					{"System admin", yesNo(w.System)},
				}
				if s.settings.ConfigPath != "" {
					fields = append(fields, field{"CLI config", s.settings.ConfigPath})
				}
				return printFields(s.stdout, fields...)
			})
		}),
	}
}

// ---- tenants

func (a *app) tenantsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "tenants", Short: "Manage tenants (system admins)"}
	var page pageOpts
	list := &cobra.Command{
		Use: "list", Short: "List tenants", Args: cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, s *session, _ []string) error {
			res, err := s.list(ctx, "/tenants", nil, page)
			if err != nil {
				return err
			}
			return s.printList(res, func() error {
				items, err := decodeItems[model.Tenant](res.Items)
				if err != nil {
					return err
				}
				t := newTable(s.stdout, "ID", "DISPLAY NAME", "CREATED")
				for _, x := range items {
					t.row(x.ID, x.DisplayName, fmtTime(x.CreatedAt))
				}
				return t.flush()
			})
		}),
	}
	addPageFlags(list, &page, 0, "tenants")

	get := &cobra.Command{
		Use: "get ID", Short: "Show a tenant", Args: cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, s *session, args []string) error {
			path, err := escapePath("tenants", args[0])
			if err != nil {
				return err
			}
			var x model.Tenant
			raw, err := s.call(ctx, http.MethodGet, path, nil, &x)
			if err != nil {
				return err
			}
			return s.emit(raw, func() error {
				return printFields(s.stdout, field{"ID", x.ID}, field{"Display name", x.DisplayName},
					field{"Created", fmtTime(x.CreatedAt)}, field{"Updated", fmtTime(x.UpdatedAt)})
			})
		}),
	}

	var displayName string
	create := &cobra.Command{
		Use: "create ID", Short: "Create a tenant", Args: cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, s *session, args []string) error {
			body := map[string]string{"id": args[0], "display_name": displayName}
			raw, err := s.call(ctx, http.MethodPost, "/tenants", body, nil)
			if err != nil {
				return err
			}
			return s.done(raw, "Created tenant %s.", sanitize(args[0]))
		}),
	}
	create.Flags().StringVar(&displayName, "display-name", "", "human-readable name")

	del := a.deleteCmd("tenant", "ID", func(args []string) (string, error) { return escapePath("tenants", args[0]) })
	cmd.AddCommand(list, get, create, del)
	return cmd
}

// deleteCmd builds the `delete` subcommand shared by all object kinds.
func (a *app) deleteCmd(kind, argName string, path func(args []string) (string, error)) *cobra.Command {
	return &cobra.Command{
		Use: "delete " + argName, Short: "Delete a " + kind, Args: cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, s *session, args []string) error {
			p, err := path(args)
			if err != nil {
				return err
			}
			raw, err := s.call(ctx, http.MethodDelete, p, nil, nil)
			if err != nil {
				return err
			}
			return s.done(raw, "Deleted %s %s.", kind, sanitize(strings.Join(args, "/")))
		}),
	}
}
