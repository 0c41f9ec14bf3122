package cli

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/fleetgate/fleetgate/internal/model"
)

// ---- apps

// appFlags are the flags of `apps create` and `apps update`.
type appFlags struct {
	description  string
	attrs        []string
	fingerprints []string
	clearAttrs   bool
	clearCerts   bool
}

// appBody is the body of POST /apps and PATCH /apps/{app}; for PATCH, nil
// members are left as they are and non-nil ones replace the whole value.
type appBody struct {
	Name             string            `json:"name,omitempty"`
	Description      *string           `json:"description,omitempty"`
	Attributes       map[string]string `json:"attributes,omitempty"`
	CertFingerprints []string          `json:"cert_fingerprints,omitempty"`
}

func (f *appFlags) add(cmd *cobra.Command, update bool) {
	attrHelp, certHelp := "attribute name=value, repeatable", "SHA-256 fingerprint of a client certificate (hex, colons allowed), repeatable"
	if update {
		attrHelp += "; replaces all attributes"
		certHelp += "; replaces all pinned certificates"
		cmd.Flags().BoolVar(&f.clearAttrs, "clear-attrs", false, "remove all attributes")
		cmd.Flags().BoolVar(&f.clearCerts, "clear-cert-fingerprints", false, "unpin all client certificates")
	}
	cmd.Flags().StringVar(&f.description, "description", "", "what the application is")
	cmd.Flags().StringArrayVar(&f.attrs, "attr", nil, attrHelp)
	cmd.Flags().StringArrayVar(&f.fingerprints, "cert-fingerprint", nil, certHelp)
}

// body checks the flags' syntax and builds the request body from the flags
// that were given.
func (f *appFlags) body(cmd *cobra.Command) (*appBody, error) {
	var b appBody
	fl := cmd.Flags()
	if fl.Changed("description") {
		b.Description = &f.description
	}
	if fl.Changed("attr") && f.clearAttrs {
		return nil, errors.New("give --attr or --clear-attrs, not both")
	}
	if fl.Changed("cert-fingerprint") && f.clearCerts {
		return nil, errors.New("give --cert-fingerprint or --clear-cert-fingerprints, not both")
	}
	if fl.Changed("attr") {
		m, err := parseAttrs(f.attrs)
		if err != nil {
			return nil, err
		}
		b.Attributes = m
	}
	if fl.Changed("cert-fingerprint") {
		fps, err := parseFingerprints(f.fingerprints)
		if err != nil {
			return nil, err
		}
		b.CertFingerprints = fps
	}
	return &b, nil
}

// parseAttrs turns name=value flags into a map; a name given twice is a
// mistake, not an override.
func parseAttrs(flags []string) (map[string]string, error) {
	m := make(map[string]string, len(flags))
	for _, a := range flags {
		k, v, ok := strings.Cut(a, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("invalid --attr %q: want name=value", a)
		}
		if _, dup := m[k]; dup {
			return nil, fmt.Errorf("--attr %s is given twice", k)
		}
		m[k] = v
	}
	return m, nil
}

// parseFingerprints normalises fingerprints to the lowercase hex the
// server stores, accepting the AB:CD:... form openssl prints.
func parseFingerprints(flags []string) ([]string, error) {
	out := make([]string, 0, len(flags))
	seen := map[string]bool{}
	for _, f := range flags {
		fp := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(f), ":", ""))
		if b, err := hex.DecodeString(fp); err != nil || len(b) != 32 {
			return nil, fmt.Errorf("invalid --cert-fingerprint %q: want the SHA-256 of the certificate, 64 hex digits (openssl x509 -noout -fingerprint -sha256)", f)
		}
		if !seen[fp] {
			seen[fp] = true
			out = append(out, fp)
		}
	}
	return out, nil
}

// fmtAttrs prints attributes as "k=v,k=v", sorted by name.
func fmtAttrs(m map[string]string) string {
	parts := make([]string, 0, len(m))
	for _, k := range sortedKeys(m) {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, ",")
}

func (a *app) appsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "apps", Short: "Manage applications (API consumers); their API keys are under keys"}
	var page pageOpts
	list := &cobra.Command{
		Use: "list", Short: "List applications", Args: cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, s *session, _ []string) error {
			res, err := s.list(ctx, "/apps", nil, page)
			if err != nil {
				return err
			}
			return s.printList(res, func() error {
				items, err := decodeItems[model.Application](res.Items)
				if err != nil {
					return err
				}
				t := newTable(s.stdout, "NAME", "DESCRIPTION", "ATTRIBUTES", "CERTS", "CREATED")
				for _, x := range items {
					t.row(x.Name, truncate(x.Description, 40), fmtAttrs(x.Attributes), fmt.Sprint(len(x.CertFingerprints)), fmtTime(x.CreatedAt))
				}
				return t.flush()
			})
		}),
	}
	addPageFlags(list, &page, 0, "applications")

	get := &cobra.Command{
		Use: "get NAME", Short: "Show an application", Args: cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, s *session, args []string) error {
			path, err := escapePath("apps", args[0])
			if err != nil {
				return err
			}
			var x model.Application
			raw, err := s.call(ctx, http.MethodGet, path, nil, &x)
			if err != nil {
				return err
			}
			return s.emit(raw, func() error { return printApp(s, &x) })
		}),
	}

	var cf appFlags
	create := &cobra.Command{
		Use:   "create NAME [--description TEXT] [--attr NAME=VALUE ...] [--cert-fingerprint HEX ...]",
		Short: "Create an application",
		Long: "Create an application. Attributes (--attr region=eu) are what identity\n" +
			"bindings compare with (principal.attributes.region); --cert-fingerprint pins\n" +
			"client certificates to the application for mTLS. API keys are issued with\n" +
			"`fleetgate keys create`.",
		Args: cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, s *session, args []string) error {
			body, err := cf.body(s.cmd)
			if err != nil {
				return err
			}
			body.Name = args[0]
			var x model.Application
			raw, err := s.call(ctx, http.MethodPost, "/apps", body, &x)
			if err != nil {
				return err
			}
			return s.done(raw, "Created app %s.", sanitize(qualified(x.TenantID, args[0])))
		}),
	}
	cf.add(create, false)

	var uf appFlags
	update := &cobra.Command{
		Use:   "update NAME [--description TEXT] [--attr NAME=VALUE ...] [--cert-fingerprint HEX ...]",
		Short: "Change an application's description, attributes or pinned certificates",
		Long: "Change an application; what is not given stays as it is.\n\n" +
			"--attr replaces ALL attributes and --cert-fingerprint ALL pinned certificates:\n" +
			"repeat the flag for every value to keep. --clear-attrs and\n" +
			"--clear-cert-fingerprints remove them all. The result is printed.",
		Args: cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, s *session, args []string) error {
			path, err := escapePath("apps", args[0])
			if err != nil {
				return err
			}
			body, err := uf.body(s.cmd)
			if err != nil {
				return err
			}
			if uf.clearAttrs {
				body.Attributes = map[string]string{}
			}
			if uf.clearCerts {
				body.CertFingerprints = []string{}
			}
			if body.Description == nil && body.Attributes == nil && body.CertFingerprints == nil {
				return errors.New("nothing to update: give --description, --attr, --cert-fingerprint, --clear-attrs or --clear-cert-fingerprints")
			}
			// omitempty would drop the empty map and list that clear.
			req := map[string]any{}
			if body.Description != nil {
				req["description"] = *body.Description
			}
			if body.Attributes != nil {
				req["attributes"] = body.Attributes
			}
			if body.CertFingerprints != nil {
				req["cert_fingerprints"] = body.CertFingerprints
			}
			var x model.Application
			raw, err := s.call(ctx, http.MethodPatch, path, req, &x)
			if err != nil {
				return err
			}
			return s.emit(raw, func() error {
				fmt.Fprintf(s.stdout, "Updated app %s.\n", sanitize(qualified(x.TenantID, x.Name)))
				return printApp(s, &x)
			})
		}),
	}
	uf.add(update, true)

	del := a.deleteCmd("app", "NAME", func(args []string) (string, error) { return escapePath("apps", args[0]) })
	del.Long = "Delete an application. Its API keys stop authenticating."
	cmd.AddCommand(list, get, create, update, del)
	return cmd
}

func printApp(s *session, x *model.Application) error {
	fields := []field{
		{"Name", x.Name}, {"ID", x.ID}, {"Tenant", x.TenantID}, {"Description", x.Description},
		{"Attributes", fmtAttrs(x.Attributes)},
	}
	fps := append([]string(nil), x.CertFingerprints...)
	sort.Strings(fps)
	if len(fps) == 0 {
		fields = append(fields, field{"Cert fingerprints", ""})
	}
	for i, fp := range fps {
		fields = append(fields, field{fmt.Sprintf("Cert fingerprint %d", i+1), fp})
	}
	fields = append(fields, field{"Created", fmtTime(x.CreatedAt)}, field{"Updated", fmtTime(x.UpdatedAt)})
	return printFields(s.stdout, fields...)
}

// truncate shortens s to at most n runes for a table cell.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// ---- API keys

// keyStatus says whether an API key still authenticates.
func keyStatus(k *model.APIKey, now time.Time) string {
	switch {
	case k.RevokedAt != nil:
		return "revoked"
	case k.ExpiresAt != nil && !now.Before(*k.ExpiresAt):
		return "expired"
	}
	return "active"
}

func (a *app) keysCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Short: "Manage the API keys of applications"}
	var page pageOpts
	list := &cobra.Command{
		Use: "list APP", Short: "List an application's API keys (secrets are never shown)", Args: cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, s *session, args []string) error {
			path, err := escapePath("apps", args[0], "keys")
			if err != nil {
				return err
			}
			res, err := s.list(ctx, path, nil, page)
			if err != nil {
				return err
			}
			return s.printList(res, func() error {
				items, err := decodeItems[model.APIKey](res.Items)
				if err != nil {
					return err
				}
				now := time.Now()
				t := newTable(s.stdout, "ID", "NAME", "PREFIX", "STATUS", "EXPIRES", "CREATED")
				for _, x := range items {
					t.row(x.ID, x.Name, x.Prefix, keyStatus(&x, now), fmtTimePtr(x.ExpiresAt), fmtTime(x.CreatedAt))
				}
				return t.flush()
			})
		}),
	}
	addPageFlags(list, &page, 0, "keys")

	var body struct {
		Name      string `json:"name"`
		ExpiresIn string `json:"expires_in,omitempty"`
	}
	create := &cobra.Command{
		Use:   "create APP --name NAME [--expires-in 720h]",
		Short: "Issue an API key for an application; its secret is printed once",
		Long: "Issue an API key. The secret goes to stdout alone (so it can be captured by a\n" +
			"script) and is never shown again; store it right away. Clients send it in\n" +
			"the API key header of the version's policy (default X-API-Key).",
		Args: cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, s *session, args []string) error {
			path, err := escapePath("apps", args[0], "keys")
			if err != nil {
				return err
			}
			if body.ExpiresIn != "" {
				if d, err := time.ParseDuration(body.ExpiresIn); err != nil || d <= 0 {
					return fmt.Errorf("invalid --expires-in %q: want a positive duration such as 720h", body.ExpiresIn)
				}
			}
			var ans struct {
				Key    model.APIKey `json:"key"`
				Secret string       `json:"secret"`
			}
			raw, err := s.call(ctx, http.MethodPost, path, body, &ans)
			if err != nil {
				return err
			}
			if ans.Secret == "" {
				return fmt.Errorf("the server created API key %s but sent no secret; revoke it and try again", cell(ans.Key.ID))
			}
			expires := "never"
			if ans.Key.ExpiresAt != nil {
				expires = fmtTime(*ans.Key.ExpiresAt)
			}
			fmt.Fprintf(s.stderr, "Created API key %s (%s) for app %s, expires %s.\n",
				cell(ans.Key.ID), cell(ans.Key.Name), cell(args[0]), expires)
			fmt.Fprintln(s.stderr, "Warning: the secret below will not be shown again; store it now.")
			if s.json {
				return printJSON(s.stdout, raw)
			}
			_, err = fmt.Fprintln(s.stdout, sanitize(ans.Secret))
			return err
		}),
	}
	create.Flags().StringVar(&body.Name, "name", "", "what the key is for, e.g. prod (required)")
	create.Flags().StringVar(&body.ExpiresIn, "expires-in", "", "lifetime such as 720h (default: never expires)")
	_ = create.MarkFlagRequired("name")

	revoke := &cobra.Command{
		Use: "revoke APP ID", Short: "Revoke an API key; it stops authenticating at once", Args: cobra.ExactArgs(2),
		RunE: a.run(func(ctx context.Context, s *session, args []string) error {
			path, err := escapePath("apps", args[0], "keys", args[1], "revoke")
			if err != nil {
				return err
			}
			raw, err := s.call(ctx, http.MethodPost, path, nil, nil)
			if err != nil {
				return err
			}
			return s.done(raw, "Revoked API key %s of app %s.", sanitize(args[1]), sanitize(args[0]))
		}),
	}

	del := a.deleteCmd("API key", "APP ID", func(args []string) (string, error) {
		return escapePath("apps", args[0], "keys", args[1])
	})
	del.Args = cobra.ExactArgs(2)
	del.Short = "Delete an API key"
	cmd.AddCommand(list, create, revoke, del)
	return cmd
}
