package cli

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/fleetgate/fleetgate/internal/model"
)

// claimsCmd manages fleet-provisioning claims: credentials a production
// batch shares to enroll its devices, bounded by models, count and time.
func (a *app) claimsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "claims",
		Short: "Manage claims: shared credentials that enroll a production batch of devices",
		Long: "A claim lets the devices of one production batch enroll themselves: each sends\n" +
			"its id, model and CSR to POST /.well-known/fleetgate/claim on the data plane with\n" +
			"the claim token (Authorization: Bearer fgc_...) or the claim certificate as TLS\n" +
			"client certificate. A claim enrolls only new devices of its models, at most\n" +
			"--max-devices of them, until it expires or is revoked, and does nothing else.",
	}
	var page pageOpts
	list := &cobra.Command{
		Use: "list", Short: "List claims", Args: cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, s *session, _ []string) error {
			res, err := s.list(ctx, "/claims", nil, page)
			if err != nil {
				return err
			}
			items, err := decodeItems[model.Claim](res.Items)
			if err != nil {
				return err
			}
			return s.printList(res, func() error {
				t := newTable(s.stdout, "NAME", "KIND", "MODELS", "USED", "EXPIRES", "STATUS")
				now := time.Now()
				for _, c := range items {
					t.row(c.Name, string(c.Kind), strings.Join(c.Models, ","), fmt.Sprintf("%d/%d", c.Used, c.MaxDevices), fmtTime(c.ExpiresAt), claimStatus(&c, now))
				}
				return t.flush()
			})
		}),
	}
	addPageFlags(list, &page, 0, "claims")

	get := &cobra.Command{
		Use: "get NAME", Short: "Show a claim", Args: cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, s *session, args []string) error {
			path, err := escapePath("claims", args[0])
			if err != nil {
				return err
			}
			var c model.Claim
			raw, err := s.call(ctx, http.MethodGet, path, nil, &c)
			if err != nil {
				return err
			}
			return s.emit(raw, func() error {
				_, err := fmt.Fprintf(s.stdout, "Claim %s (%s): models %s, %d of %d devices enrolled, expires %s, %s.\n",
					sanitize(c.Name), c.Kind, sanitize(strings.Join(c.Models, ",")), c.Used, c.MaxDevices, fmtTime(c.ExpiresAt), claimStatus(&c, time.Now()))
				return err
			})
		}),
	}

	var models []string
	var maxDevices int
	var expiresIn, csrFile string
	var certificate bool
	create := &cobra.Command{
		Use:   "create NAME --model M [--model M2 ...] --max-devices N --expires-in DURATION [--certificate [--csr FILE]]",
		Short: "Create a claim; its secret (or certificate and key) is printed once",
		Long: "Create a claim. By default it is a token: the secret goes to stdout alone and is\n" +
			"never shown again. With --certificate it is a client certificate from the\n" +
			"tenant CA: for the key of --csr FILE, or for a P-256 key made by the server,\n" +
			"in which case the certificate and then the private key are printed (PEM).",
		Example: "  fleetgate claims create batch-2026-07 --model em-300 --max-devices 5000 --expires-in 720h",
		Args:    cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, s *session, args []string) error {
			if _, err := time.ParseDuration(expiresIn); err != nil {
				return fmt.Errorf("invalid --expires-in %q: want a duration such as 720h", expiresIn)
			}
			body := map[string]any{"name": args[0], "models": models, "max_devices": maxDevices, "expires_in": expiresIn}
			if certificate {
				body["kind"] = "certificate"
			}
			if csrFile != "" {
				if !certificate {
					return fmt.Errorf("--csr is for certificate claims: add --certificate")
				}
				b, err := os.ReadFile(csrFile)
				if err != nil {
					return err
				}
				body["csr"] = string(b)
			}
			var ans struct {
				Claim       model.Claim `json:"claim"`
				Secret      string      `json:"secret"`
				Certificate string      `json:"certificate"`
				PrivateKey  string      `json:"private_key"`
			}
			raw, err := s.call(ctx, http.MethodPost, "/claims", body, &ans)
			if err != nil {
				return err
			}
			fmt.Fprintf(s.stderr, "Created claim %s (%s) for %d device(s), expires %s.\n", sanitize(ans.Claim.Name), ans.Claim.Kind, ans.Claim.MaxDevices, fmtTime(ans.Claim.ExpiresAt))
			if ans.Secret != "" || ans.PrivateKey != "" {
				fmt.Fprintln(s.stderr, "Warning: the secret below will not be shown again; store it now.")
			}
			if s.json {
				return printJSON(s.stdout, raw)
			}
			_, err = fmt.Fprint(s.stdout, sanitizePEMOrLine(ans.Secret, ans.Certificate, ans.PrivateKey))
			return err
		}),
	}
	create.Flags().StringArrayVar(&models, "model", nil, "device model the claim may enroll, repeatable (required)")
	create.Flags().IntVar(&maxDevices, "max-devices", 0, "how many devices the claim may enroll (required)")
	create.Flags().StringVar(&expiresIn, "expires-in", "", "lifetime such as 720h, at most 366 days (required)")
	create.Flags().BoolVar(&certificate, "certificate", false, "issue a claim certificate instead of a token")
	create.Flags().StringVar(&csrFile, "csr", "", "PEM CSR for the claim certificate (default: the server makes the key)")
	for _, f := range []string{"model", "max-devices", "expires-in"} {
		_ = create.MarkFlagRequired(f)
	}

	var reason string
	revoke := &cobra.Command{
		Use: "revoke NAME [--reason TEXT]", Short: "Revoke a claim; devices it enrolled keep their certificates", Args: cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, s *session, args []string) error {
			path, err := escapePath("claims", args[0], "revoke")
			if err != nil {
				return err
			}
			var c model.Claim
			raw, err := s.call(ctx, http.MethodPost, path, map[string]string{"reason": reason}, &c)
			if err != nil {
				return err
			}
			return s.done(raw, "Revoked claim %s after %d enrollment(s).", sanitize(c.Name), c.Used)
		}),
	}
	revoke.Flags().StringVar(&reason, "reason", "", "why, for the audit log")
	cmd.AddCommand(list, get, create, revoke)
	return cmd
}

func claimStatus(c *model.Claim, now time.Time) string {
	if why := c.Usable(now); why != "" {
		return strings.TrimPrefix(why, "claim-")
	}
	return "active"
}

// sanitizePEMOrLine prints the one secret of a created claim: the token on
// one line, or the certificate and key PEM blocks as they came.
func sanitizePEMOrLine(secret, cert, key string) string {
	if secret != "" {
		return sanitize(secret) + "\n"
	}
	return cert + key
}

// externalCAsCmd manages the external CAs whose client certificates map to
// registered devices.
func (a *app) externalCAsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "external-cas",
		Short: "Manage external CAs whose client certificates authenticate registered devices",
		Long: "Register a CA you run yourself (a factory or cloud IoT CA). A client certificate\n" +
			"it issued authenticates the registered, active device whose id the mapping reads\n" +
			"from it: --source cn (the subject common name), or san-uri / san-dns with a\n" +
			"--pattern holding one {device} placeholder. Unregistered ids authenticate nobody.\n\n" +
			"Registering proves you hold the CA's private key: sign a certificate whose\n" +
			"subject common name is the tenant's registration code (fleetgate external-cas\n" +
			"registration-code) with the CA key and pass it with --verification-cert. A CA\n" +
			"whose key you do not hold (a chip vendor's) cannot be registered.",
	}
	var page pageOpts
	list := &cobra.Command{
		Use: "list", Short: "List registered external CAs", Args: cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, s *session, _ []string) error {
			res, err := s.list(ctx, "/ca/external", nil, page)
			if err != nil {
				return err
			}
			items, err := decodeItems[model.ExternalCA](res.Items)
			if err != nil {
				return err
			}
			return s.printList(res, func() error {
				t := newTable(s.stdout, "NAME", "SUBJECT", "NOT AFTER", "SOURCE", "PATTERN")
				for _, c := range items {
					t.row(c.Name, c.Subject, fmtTime(c.NotAfter), c.Source, c.Pattern)
				}
				return t.flush()
			})
		}),
	}
	addPageFlags(list, &page, 0, "external CAs")
	code := &cobra.Command{
		Use: "registration-code", Short: "Print the registration code: the common name of a verification certificate", Args: cobra.NoArgs,
		Example: "  code=$(fleetgate external-cas registration-code)\n" +
			"  openssl req -new -key verif.key -subj \"/CN=$code\" -out verif.csr\n" +
			"  openssl x509 -req -in verif.csr -CA factory-ca.pem -CAkey factory-ca.key -days 1 -out verif.pem",
		RunE: a.run(func(ctx context.Context, s *session, _ []string) error {
			var ans struct {
				Code string `json:"registration_code"`
			}
			raw, err := s.call(ctx, http.MethodGet, "/ca/external/registration-code", nil, &ans)
			if err != nil {
				return err
			}
			return s.emit(raw, func() error {
				_, err := fmt.Fprintln(s.stdout, sanitize(ans.Code))
				return err
			})
		}),
	}
	var certFile, verifFile, source, pattern string
	add := &cobra.Command{
		Use:   "add NAME --cert FILE --verification-cert FILE --source cn|san-uri|san-dns [--pattern P]",
		Short: "Register an external CA (admins)",
		Example: "  fleetgate external-cas add factory --cert factory-ca.pem --verification-cert verif.pem \\\n" +
			"    --source san-uri --pattern 'spiffe://acme.example/device/{device}'",
		Args: cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, s *session, args []string) error {
			b, err := os.ReadFile(certFile)
			if err != nil {
				return err
			}
			v, err := os.ReadFile(verifFile)
			if err != nil {
				return err
			}
			var c model.ExternalCA
			raw, err := s.call(ctx, http.MethodPost, "/ca/external", map[string]any{"name": args[0], "certificate": string(b),
				"verification_certificate": string(v), "mapping": map[string]string{"source": source, "pattern": pattern}}, &c)
			if err != nil {
				return err
			}
			return s.done(raw, "Registered external CA %s (%s), valid until %s.", sanitize(c.Name), sanitize(c.Subject), fmtTime(c.NotAfter))
		}),
	}
	add.Flags().StringVar(&certFile, "cert", "", "PEM file of the CA certificate (required)")
	add.Flags().StringVar(&verifFile, "verification-cert", "", "PEM certificate signed by the CA key whose common name is the registration code (required)")
	add.Flags().StringVar(&source, "source", "cn", "where the device id is: cn, san-uri or san-dns")
	add.Flags().StringVar(&pattern, "pattern", "", "template with one {device}, e.g. {device}.devices.example.com")
	_ = add.MarkFlagRequired("cert")
	_ = add.MarkFlagRequired("verification-cert")
	del := a.deleteCmd("external CA", "NAME", func(args []string) (string, error) { return escapePath("ca", "external", args[0]) })
	cmd.AddCommand(list, code, add, del)
	return cmd
}
