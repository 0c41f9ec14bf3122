package cli

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/fleetgate/fleetgate/internal/model"
)

// `fleetgate devices psk` and `fleetgate devices token`: DTLS pre-shared
// keys and short-lived device tokens. Their secrets are printed once, on
// stdout alone (so they can be piped into provisioning), with the notice
// on stderr.

// pskRow is a PSK as the server lists it (never the key).
type pskRow struct {
	ID           string     `json:"id"`
	Device       string     `json:"device"`
	Identity     string     `json:"identity"`
	CreatedAt    time.Time  `json:"created_at"`
	RevokedAt    *time.Time `json:"revoked_at"`
	RevokeReason string     `json:"revoke_reason"`
}

func (a *app) devicePSKCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "psk",
		Short: "Manage a device's DTLS pre-shared keys (create, list, revoke)",
		Long: "DTLS pre-shared keys for constrained CoAP devices. The key is random (32 bytes),\n" +
			"printed once in hex, and stored sealed with the device KEK.",
	}
	var identity string
	create := &cobra.Command{
		Use:   "create DEVICE [--identity TENANT/NAME]",
		Short: "Create a PSK; its key is printed once (hex)",
		Long: "Create a PSK for an active device. The identity the device presents defaults to\n" +
			"<tenant>/<device>/<random>; a chosen one must start with \"<tenant>/\".\n" +
			"The key goes to stdout alone and is never shown again; store it right away.",
		Args: cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, s *session, args []string) error {
			path, err := escapePath("devices", args[0], "psks")
			if err != nil {
				return err
			}
			var body any
			if identity != "" {
				body = map[string]string{"identity": identity}
			}
			var ans struct {
				PSK pskRow `json:"psk"`
				Key string `json:"key"`
			}
			raw, err := s.call(ctx, http.MethodPost, path, body, &ans)
			if err != nil {
				return err
			}
			if ans.Key == "" {
				return fmt.Errorf("the server created PSK %s but sent no key; revoke it and create another", cell(ans.PSK.ID))
			}
			fmt.Fprintf(s.stderr, "Created PSK %s for device %s, identity %s.\n", cell(ans.PSK.ID), cell(args[0]), cell(ans.PSK.Identity))
			fmt.Fprintln(s.stderr, "Warning: the key below will not be shown again; store it now.")
			if s.json {
				return printJSON(s.stdout, raw)
			}
			_, err = fmt.Fprintln(s.stdout, sanitize(ans.Key))
			return err
		}),
	}
	create.Flags().StringVar(&identity, "identity", "", "PSK identity, \"<tenant>/\" then A-Z a-z 0-9 . _ @ : / - (default: generated)")

	var page pageOpts
	list := &cobra.Command{
		Use: "list DEVICE", Short: "List a device's PSKs (identities, never keys)", Args: cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, s *session, args []string) error {
			path, err := escapePath("devices", args[0], "psks")
			if err != nil {
				return err
			}
			res, err := s.list(ctx, path, nil, page)
			if err != nil {
				return err
			}
			return s.printList(res, func() error {
				items, err := decodeItems[pskRow](res.Items)
				if err != nil {
					return err
				}
				t := newTable(s.stdout, "ID", "IDENTITY", "STATUS", "CREATED")
				for _, p := range items {
					status := "active"
					if p.RevokedAt != nil {
						status = "revoked (" + p.RevokeReason + ")"
					}
					t.row(p.ID, p.Identity, status, fmtTime(p.CreatedAt))
				}
				return t.flush()
			})
		}),
	}
	addPageFlags(list, &page, 0, "PSKs")
	cmd.AddCommand(create, list, a.revokeKindCmd("psk", "psks", "PSK"))
	return cmd
}

func (a *app) deviceTokenCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Manage a device's short-lived tokens (create, list, revoke)",
		Long: "Device tokens are JWTs signed by Fleetgate (EdDSA, a key per tenant; public keys\n" +
			"at /.well-known/fleetgate/<tenant>/jwks.json on the data plane). A device sends one\n" +
			"as `Authorization: Bearer` on HTTP operations that accept device_token, or as its\n" +
			"MQTT password with its device id as the username.",
	}
	var ttl string
	create := &cobra.Command{
		Use:   "create DEVICE [--ttl 1h]",
		Short: "Mint a token for an active device; it is printed once",
		Long: "Mint a token valid for --ttl (1m to 24h; default 1h). The token goes to stdout\n" +
			"alone and is never shown again; only its id (jti) and expiry are stored.",
		Args: cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, s *session, args []string) error {
			path, err := escapePath("devices", args[0], "tokens")
			if err != nil {
				return err
			}
			var body any
			if s.cmd.Flags().Changed("ttl") {
				if d, err := time.ParseDuration(ttl); err != nil || d < time.Minute || d > 24*time.Hour {
					return fmt.Errorf("invalid --ttl %q: want a duration from 1m to 24h", ttl)
				}
				body = map[string]string{"ttl": ttl}
			}
			var ans struct {
				Credential model.DeviceCredential `json:"credential"`
				Token      string                 `json:"token"`
				ExpiresAt  time.Time              `json:"expires_at"`
			}
			raw, err := s.call(ctx, http.MethodPost, path, body, &ans)
			if err != nil {
				return err
			}
			if ans.Token == "" {
				return fmt.Errorf("the server minted token %s but sent nothing; revoke it and mint another", cell(ans.Credential.ID))
			}
			fmt.Fprintf(s.stderr, "Minted token %s for device %s, expires %s.\n", cell(ans.Credential.ID), cell(args[0]), fmtTime(ans.ExpiresAt))
			fmt.Fprintln(s.stderr, "Warning: the token below will not be shown again; store it now.")
			if s.json {
				return printJSON(s.stdout, raw)
			}
			_, err = fmt.Fprintln(s.stdout, sanitize(ans.Token))
			return err
		}),
	}
	create.Flags().StringVar(&ttl, "ttl", "", "lifetime, 1m to 24h (default 1h)")

	var page pageOpts
	list := &cobra.Command{
		Use: "list DEVICE", Short: "List a device's tokens (id = jti, expiry, revocation)", Args: cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, s *session, args []string) error {
			path, err := escapePath("devices", args[0], "tokens")
			if err != nil {
				return err
			}
			res, err := s.list(ctx, path, nil, page)
			if err != nil {
				return err
			}
			return s.printList(res, func() error {
				items, err := decodeItems[model.DeviceCredential](res.Items)
				if err != nil {
					return err
				}
				now := time.Now()
				t := newTable(s.stdout, "ID", "STATUS", "EXPIRES", "CREATED")
				for _, c := range items {
					t.row(c.ID, credentialStatus(&c, now), fmtTimePtr(c.NotAfter), fmtTime(c.CreatedAt))
				}
				return t.flush()
			})
		}),
	}
	addPageFlags(list, &page, 0, "tokens")
	cmd.AddCommand(create, list, a.revokeKindCmd("token", "tokens", "token"))
	return cmd
}

// revokeKindCmd is `revoke DEVICE ID [--reason R]` for PSKs and tokens.
func (a *app) revokeKindCmd(kind, segment, what string) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "revoke DEVICE ID [--reason REASON]",
		Short: "Revoke a " + what + "; the device's sessions that use it end at once",
		Long: "Revoke a " + what + ". --reason is one of " + strings.Join(revokeReasons, ", ") + "\n" +
			"(default unspecified). Revoking twice keeps the first time and reason.",
		Args: cobra.ExactArgs(2),
		RunE: a.run(func(ctx context.Context, s *session, args []string) error {
			path, err := escapePath("devices", args[0], segment, args[1], "revoke")
			if err != nil {
				return err
			}
			var body any
			if reason != "" {
				known := false
				for _, r := range revokeReasons {
					known = known || r == reason
				}
				if !known {
					return fmt.Errorf("invalid --reason %q: want one of %s", reason, strings.Join(revokeReasons, ", "))
				}
				body = map[string]string{"reason": reason}
			}
			var c model.DeviceCredential
			raw, err := s.call(ctx, http.MethodPost, path, body, &c)
			if err != nil {
				return err
			}
			return s.done(raw, "Revoked %s %s of device %s (%s).", kind, sanitize(args[1]), sanitize(args[0]), sanitize(c.RevokeReason))
		}),
	}
	cmd.Flags().StringVar(&reason, "reason", "", "one of "+strings.Join(revokeReasons, ", "))
	return cmd
}
