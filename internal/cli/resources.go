package cli

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/fleetgate/fleetgate/internal/model"
)

// ---- apis

func (a *app) apisCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "apis", Short: "Manage APIs"}
	var page pageOpts
	list := &cobra.Command{
		Use: "list", Short: "List APIs", Args: cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, s *session, _ []string) error {
			res, err := s.list(ctx, "/apis", nil, page)
			if err != nil {
				return err
			}
			return s.printList(res, func() error {
				items, err := decodeItems[model.API](res.Items)
				if err != nil {
					return err
				}
				t := newTable(s.stdout, "NAME", "OWNER", "DISPLAY NAME", "CREATED")
				for _, x := range items {
					t.row(x.Name, x.Owner, x.DisplayName, fmtTime(x.CreatedAt))
				}
				return t.flush()
			})
		}),
	}
	addPageFlags(list, &page, 0, "APIs")

	get := &cobra.Command{
		Use: "get NAME", Short: "Show an API", Args: cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, s *session, args []string) error {
			path, err := escapePath("apis", args[0])
			if err != nil {
				return err
			}
			var x model.API
			raw, err := s.call(ctx, http.MethodGet, path, nil, &x)
			if err != nil {
				return err
			}
			return s.emit(raw, func() error {
				return printFields(s.stdout,
					field{"Name", x.Name}, field{"Tenant", x.TenantID}, field{"Owner", x.Owner},
					field{"Display name", x.DisplayName}, field{"Description", x.Description},
					field{"Created", fmtTime(x.CreatedAt)}, field{"Updated", fmtTime(x.UpdatedAt)})
			})
		}),
	}

	var body struct {
		Name        string `json:"name"`
		DisplayName string `json:"display_name,omitempty"`
		Description string `json:"description,omitempty"`
		Owner       string `json:"owner"`
	}
	create := &cobra.Command{
		Use: "create NAME --owner TEAM", Short: "Create an API", Args: cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, s *session, args []string) error {
			body.Name = args[0]
			var x model.API
			raw, err := s.call(ctx, http.MethodPost, "/apis", body, &x)
			if err != nil {
				return err
			}
			return s.done(raw, "Created api %s.", sanitize(qualified(x.TenantID, args[0])))
		}),
	}
	create.Flags().StringVar(&body.Owner, "owner", "", "owning team or person (required)")
	create.Flags().StringVar(&body.DisplayName, "display-name", "", "human-readable name")
	create.Flags().StringVar(&body.Description, "description", "", "what the API is for")
	_ = create.MarkFlagRequired("owner")

	del := a.deleteCmd("api", "NAME", func(args []string) (string, error) { return escapePath("apis", args[0]) })
	cmd.AddCommand(list, get, create, del)
	return cmd
}

// qualified prefixes name with the tenant when known ("acme/vehicles").
func qualified(tenant, name string) string {
	if tenant == "" {
		return name
	}
	return tenant + "/" + name
}

// ---- operators

func (a *app) operatorsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "operators", Short: "Manage operators and their roles"}
	var page pageOpts
	list := &cobra.Command{
		Use: "list", Short: "List operators", Args: cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, s *session, _ []string) error {
			res, err := s.list(ctx, "/operators", nil, page)
			if err != nil {
				return err
			}
			return s.printList(res, func() error {
				items, err := decodeItems[model.Operator](res.Items)
				if err != nil {
					return err
				}
				t := newTable(s.stdout, "NAME", "ROLES", "EMAIL", "SYSTEM", "CREATED")
				for _, x := range items {
					t.row(x.Name, joinStrings(x.Roles), x.Email, yesNo(x.System), fmtTime(x.CreatedAt))
				}
				return t.flush()
			})
		}),
	}
	addPageFlags(list, &page, 0, "operators")

	get := &cobra.Command{
		Use: "get NAME", Short: "Show an operator", Args: cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, s *session, args []string) error {
			path, err := escapePath("operators", args[0])
			if err != nil {
				return err
			}
			var x model.Operator
			raw, err := s.call(ctx, http.MethodGet, path, nil, &x)
			if err != nil {
				return err
			}
			return s.emit(raw, func() error {
				return printFields(s.stdout,
					field{"Name", x.Name}, field{"ID", x.ID}, field{"Tenant", x.TenantID},
					field{"Email", x.Email}, field{"Roles", joinStrings(x.Roles)},
					field{"System admin", yesNo(x.System)},
					field{"Created", fmtTime(x.CreatedAt)}, field{"Updated", fmtTime(x.UpdatedAt)})
			})
		}),
	}

	var email string
	var roles []string
	create := &cobra.Command{
		Use: "create NAME --role ROLE [--role ROLE]", Short: "Create an operator", Args: cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, s *session, args []string) error {
			// Roles are checked here because a typo is cheaper to report
			// before the request than to decode from a 422.
			rs := make([]model.Role, 0, len(roles))
			for _, r := range roles {
				role := model.Role(strings.TrimSpace(r))
				if !role.Valid() {
					return fmt.Errorf("unknown role %q: want one of %s", r, joinStrings(model.AllRoles))
				}
				rs = append(rs, role)
			}
			body := struct {
				Name  string       `json:"name"`
				Email string       `json:"email,omitempty"`
				Roles []model.Role `json:"roles"`
			}{args[0], email, rs}
			var x model.Operator
			raw, err := s.call(ctx, http.MethodPost, "/operators", body, &x)
			if err != nil {
				return err
			}
			return s.done(raw, "Created operator %s with roles %s.", sanitize(qualified(x.TenantID, args[0])), joinStrings(rs))
		}),
	}
	create.Flags().StringSliceVar(&roles, "role", nil, "role to grant, repeatable: "+joinStrings(model.AllRoles)+" (required)")
	create.Flags().StringVar(&email, "email", "", "contact address")
	_ = create.MarkFlagRequired("role")

	del := a.deleteCmd("operator", "NAME", func(args []string) (string, error) { return escapePath("operators", args[0]) })
	cmd.AddCommand(list, get, create, del)
	return cmd
}

// ---- tokens

// tokenView is a token as the admin API shows it: the model plus the
// operator's name.
type tokenView struct {
	model.Token
	Operator string `json:"operator"`
}

// status says whether a token still authenticates.
func (t *tokenView) status(now time.Time) string {
	switch {
	case t.RevokedAt != nil:
		return "revoked"
	case !t.Active(now):
		return "expired"
	}
	return "active"
}

func (a *app) tokensCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "tokens", Short: "Manage operators' API tokens"}
	var page pageOpts
	var listOperator string
	list := &cobra.Command{
		Use: "list", Short: "List tokens (secrets are never shown)", Args: cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, s *session, _ []string) error {
			res, err := s.list(ctx, "/tokens", url.Values{"operator": {listOperator}}, page)
			if err != nil {
				return err
			}
			return s.printList(res, func() error {
				items, err := decodeItems[tokenView](res.Items)
				if err != nil {
					return err
				}
				now := time.Now()
				t := newTable(s.stdout, "ID", "NAME", "OPERATOR", "PREFIX", "STATUS", "EXPIRES", "LAST USED")
				for _, x := range items {
					t.row(x.ID, x.Name, x.Operator, x.Prefix, x.status(now), fmtTimePtr(x.ExpiresAt), fmtTimePtr(x.LastUsedAt))
				}
				return t.flush()
			})
		}),
	}
	list.Flags().StringVar(&listOperator, "operator", "", "only this operator's tokens")
	addPageFlags(list, &page, 0, "tokens")

	get := &cobra.Command{
		Use: "get ID", Short: "Show a token", Args: cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, s *session, args []string) error {
			path, err := escapePath("tokens", args[0])
			if err != nil {
				return err
			}
			var x tokenView
			raw, err := s.call(ctx, http.MethodGet, path, nil, &x)
			if err != nil {
				return err
			}
			return s.emit(raw, func() error { return printToken(s, &x) })
		}),
	}

	var body struct {
		Operator  string `json:"operator,omitempty"`
		Name      string `json:"name"`
		ExpiresIn string `json:"expires_in,omitempty"`
	}
	create := &cobra.Command{
		Use:   "create --name NAME [--operator NAME] [--expires-in 720h]",
		Short: "Create a token; its secret is printed once",
		Long: "Create a token. The secret goes to stdout alone (so it can be captured by a\n" +
			"script) and is never shown again; store it right away.",
		Args: cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, s *session, _ []string) error {
			if body.ExpiresIn != "" {
				if d, err := time.ParseDuration(body.ExpiresIn); err != nil || d <= 0 {
					return fmt.Errorf("invalid --expires-in %q: want a positive duration such as 720h", body.ExpiresIn)
				}
			}
			var ans struct {
				Token  tokenView `json:"token"`
				Secret string    `json:"secret"`
			}
			raw, err := s.call(ctx, http.MethodPost, "/tokens", body, &ans)
			if err != nil {
				return err
			}
			expires := "never"
			if ans.Token.ExpiresAt != nil {
				expires = fmtTime(*ans.Token.ExpiresAt)
			}
			fmt.Fprintf(s.stderr, "Created token %s (%s) for operator %s, expires %s.\n",
				cell(ans.Token.ID), cell(ans.Token.Name), cell(ans.Token.Operator), expires)
			fmt.Fprintln(s.stderr, "Warning: the secret below will not be shown again; store it now.")
			if s.json {
				return printJSON(s.stdout, raw)
			}
			_, err = fmt.Fprintln(s.stdout, sanitize(ans.Secret))
			return err
		}),
	}
	create.Flags().StringVar(&body.Name, "name", "", "what the token is for, e.g. ci (required)")
	create.Flags().StringVar(&body.Operator, "operator", "", "operator to issue it for (default: yourself)")
	create.Flags().StringVar(&body.ExpiresIn, "expires-in", "", "lifetime such as 720h (default: the server's)")
	_ = create.MarkFlagRequired("name")

	revoke := &cobra.Command{
		Use: "revoke ID", Short: "Revoke a token; it stops authenticating at once", Args: cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, s *session, args []string) error {
			path, err := escapePath("tokens", args[0], "revoke")
			if err != nil {
				return err
			}
			raw, err := s.call(ctx, http.MethodPost, path, nil, nil)
			if err != nil {
				return err
			}
			return s.done(raw, "Revoked token %s.", sanitize(args[0]))
		}),
	}

	del := a.deleteCmd("token", "ID", func(args []string) (string, error) { return escapePath("tokens", args[0]) })
	cmd.AddCommand(list, get, create, revoke, del)
	return cmd
}

func printToken(s *session, x *tokenView) error {
	return printFields(s.stdout,
		field{"ID", x.ID}, field{"Name", x.Name}, field{"Tenant", x.TenantID},
		field{"Operator", x.Operator}, field{"Operator ID", x.OperatorID},
		field{"Prefix", x.Prefix}, field{"Status", x.status(time.Now())},
		field{"Expires", fmtTimePtr(x.ExpiresAt)}, field{"Revoked", fmtTimePtr(x.RevokedAt)},
		field{"Last used", fmtTimePtr(x.LastUsedAt)}, field{"Created", fmtTime(x.CreatedAt)})
}
