package cli

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/spf13/cobra"
)

// inventoryAnswer is the part of GET /inventory the table shows.
type inventoryAnswer struct {
	Tenant     string `json:"tenant"`
	Score      int    `json:"score"`
	Operations []struct {
		API         string   `json:"api"`
		Version     string   `json:"version"`
		State       string   `json:"state"`
		Protocol    string   `json:"protocol"`
		Action      string   `json:"action"`
		Path        string   `json:"path"`
		Auth        []string `json:"auth"`
		Bindings    int      `json:"bindings"`
		Rules       int      `json:"rules"`
		RateLimited bool     `json:"rate_limited"`
		Calls       int64    `json:"calls"`
	} `json:"operations"`
	Parts []struct {
		Name    string `json:"name"`
		Penalty int    `json:"penalty"`
		Why     string `json:"why"`
	} `json:"score_parts"`
}

// inventoryCmd shows the tenant's attack surface: operations, their
// guards and traffic, and a score whose largest deductions come first.
func (a *app) inventoryCmd() *cobra.Command {
	var markdown bool
	cmd := &cobra.Command{
		Use:   "inventory [--markdown]",
		Short: "Show the API inventory and attack surface of the tenant, with a score",
		Args:  cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, s *session, _ []string) error {
			if markdown {
				// The server renders Markdown; the client passes it through.
				var text string
				if err := s.client.Do(ctx, http.MethodGet, "/inventory?format=markdown", nil, &text); err != nil {
					return err
				}
				_, err := fmt.Fprint(s.stdout, text)
				return err
			}
			var inv inventoryAnswer
			raw, err := s.call(ctx, http.MethodGet, "/inventory", nil, &inv)
			if err != nil {
				return err
			}
			return s.emit(raw, func() error {
				fmt.Fprintf(s.stdout, "Tenant %s: score %d/100\n", inv.Tenant, inv.Score)
				for _, p := range inv.Parts {
					fmt.Fprintf(s.stdout, "  -%d %s: %s\n", p.Penalty, p.Name, p.Why)
				}
				fmt.Fprintln(s.stdout)
				t := newTable(s.stdout, "API", "VERSION", "STATE", "PROTO", "OPERATION", "AUTH", "BINDINGS", "RULES", "LIMITED", "CALLS")
				for _, op := range inv.Operations {
					t.row(op.API, op.Version, op.State, op.Protocol, op.Action+" "+op.Path, strings.Join(op.Auth, ","),
						fmt.Sprint(op.Bindings), fmt.Sprint(op.Rules), yesNo(op.RateLimited), fmt.Sprint(op.Calls))
				}
				return t.flush()
			})
		}),
	}
	cmd.Flags().BoolVar(&markdown, "markdown", false, "print the Markdown report (for reviews and tickets)")
	return cmd
}

// securityCmd shows posture findings, most severe first.
func (a *app) securityCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "security", Short: "Security posture of the tenant"}
	cmd.AddCommand(&cobra.Command{
		Use:   "findings",
		Short: "List posture findings (shared or expiring certificates, weak keys, stale devices, over-broad authorization)",
		Args:  cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, s *session, _ []string) error {
			var out struct {
				Findings []struct {
					ID       string   `json:"id"`
					Severity string   `json:"severity"`
					Title    string   `json:"title"`
					Objects  []string `json:"objects"`
					Fix      string   `json:"fix"`
				} `json:"findings"`
			}
			raw, err := s.call(ctx, http.MethodGet, "/security/findings", nil, &out)
			if err != nil {
				return err
			}
			return s.emit(raw, func() error {
				if len(out.Findings) == 0 {
					_, err := fmt.Fprintln(s.stdout, "No findings.")
					return err
				}
				for _, f := range out.Findings {
					fmt.Fprintf(s.stdout, "[%s] %s: %s\n  objects: %s\n  fix: %s\n", strings.ToUpper(f.Severity), f.ID, f.Title,
						strings.Join(f.Objects, ", "), f.Fix)
				}
				return nil
			})
		}),
	})
	return cmd
}
