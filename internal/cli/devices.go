package cli

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/fleetgate/fleetgate/internal/model"
)

// ---- devices

// deviceFlags are the flags of `devices create` and `devices update`.
type deviceFlags struct {
	model, serial, status, firmware, reason string
	owners, attrs                           []string
	clearOwners, clearAttrs                 bool
}

func (f *deviceFlags) add(cmd *cobra.Command, update bool) {
	fl := cmd.Flags()
	ownerHelp, attrHelp := "owning subject such as user:alice or app:fleet-ops, repeatable", "attribute name=value, repeatable"
	statusHelp := "initial status: pending (default), active, suspended or quarantined"
	if update {
		ownerHelp += "; replaces all owners"
		attrHelp += "; replaces all attributes"
		statusHelp = "new status: " + joinStrings(model.AllDeviceStatuses) + " (decommissioned is final and revokes every credential)"
		fl.BoolVar(&f.clearOwners, "clear-owners", false, "remove all owners")
		fl.BoolVar(&f.clearAttrs, "clear-attrs", false, "remove all attributes")
		fl.StringVar(&f.reason, "reason", "", "why the status changes, for the audit log (with --status)")
	}
	fl.StringVar(&f.model, "model", "", "device model")
	fl.StringVar(&f.serial, "serial", "", "serial number")
	fl.StringVar(&f.firmware, "firmware", "", "firmware version")
	fl.StringVar(&f.status, "status", "", statusHelp)
	fl.StringArrayVar(&f.owners, "owner", nil, ownerHelp)
	fl.StringArrayVar(&f.attrs, "attr", nil, attrHelp)
}

// body checks the flags' syntax and returns the members of the request
// body for the flags that were given. A map, not a struct: for PATCH an
// empty list or map (clear) must be sent, not omitted.
func (f *deviceFlags) body(cmd *cobra.Command) (map[string]any, error) {
	fl := cmd.Flags()
	b := map[string]any{}
	for name, v := range map[string]string{"model": f.model, "serial": f.serial, "firmware": f.firmware} {
		if fl.Changed(name) {
			b[name] = v
		}
	}
	if fl.Changed("status") {
		if !model.DeviceStatus(f.status).Valid() {
			return nil, fmt.Errorf("invalid --status %q: want one of %s", f.status, joinStrings(model.AllDeviceStatuses))
		}
		b["status"] = f.status
	}
	if fl.Changed("reason") {
		if !fl.Changed("status") {
			return nil, errors.New("--reason explains a status change: give it with --status")
		}
		b["reason"] = f.reason
	}
	if fl.Changed("owner") && f.clearOwners {
		return nil, errors.New("give --owner or --clear-owners, not both")
	}
	if fl.Changed("attr") && f.clearAttrs {
		return nil, errors.New("give --attr or --clear-attrs, not both")
	}
	switch {
	case f.clearOwners:
		b["owners"] = []string{}
	case fl.Changed("owner"):
		b["owners"] = f.owners
	}
	switch {
	case f.clearAttrs:
		b["attributes"] = map[string]string{}
	case fl.Changed("attr"):
		m, err := parseAttrs(f.attrs)
		if err != nil {
			return nil, err
		}
		b["attributes"] = m
	}
	return b, nil
}

func (a *app) devicesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "devices",
		Short: "Manage the device registry, enrollment tokens and device credentials",
		Long: "Manage devices: the registry (list, get, create, update, delete, import),\n" +
			"one-time enrollment tokens, and the certificates devices obtained with them\n" +
			"(credentials, revoke). The tenant's device CA is under `fleetgate ca`.",
	}

	var page pageOpts
	var status, modelName string
	list := &cobra.Command{
		Use:   "list [--status S] [--model M]",
		Short: "List devices",
		Long: "List devices. The server has no filters for devices: --status and --model\n" +
			"select among the devices fetched, so with --limit fewer rows may show.",
		Args: cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, s *session, _ []string) error {
			if status != "" && !model.DeviceStatus(status).Valid() {
				return fmt.Errorf("invalid --status %q: want one of %s", status, joinStrings(model.AllDeviceStatuses))
			}
			res, err := s.list(ctx, "/devices", nil, page)
			if err != nil {
				return err
			}
			items, err := decodeItems[model.Device](res.Items)
			if err != nil {
				return err
			}
			kept, keptRaw := items[:0], res.Items[:0]
			for i, d := range items {
				if (status == "" || string(d.Status) == status) && (modelName == "" || d.Model == modelName) {
					kept, keptRaw = append(kept, d), append(keptRaw, res.Items[i])
				}
			}
			res.Items = keptRaw
			return s.printList(res, func() error {
				t := newTable(s.stdout, "ID", "STATUS", "MODEL", "SERIAL", "FIRMWARE", "OWNERS", "LAST SEEN")
				for _, d := range kept {
					t.row(d.ID, string(d.Status), d.Model, d.Serial, d.Firmware, strings.Join(d.Owners, ","), fmtTimePtr(d.LastSeen))
				}
				return t.flush()
			})
		}),
	}
	addPageFlags(list, &page, 0, "devices")
	list.Flags().StringVar(&status, "status", "", "only devices in this status: "+joinStrings(model.AllDeviceStatuses))
	list.Flags().StringVar(&modelName, "model", "", "only devices of this model")

	get := &cobra.Command{
		Use: "get ID", Short: "Show a device", Args: cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, s *session, args []string) error {
			path, err := escapePath("devices", args[0])
			if err != nil {
				return err
			}
			var d model.Device
			raw, err := s.call(ctx, http.MethodGet, path, nil, &d)
			if err != nil {
				return err
			}
			return s.emit(raw, func() error { return printDevice(s, &d) })
		}),
	}

	var cf deviceFlags
	create := &cobra.Command{
		Use:   "create ID [--model M] [--serial S] [--firmware V] [--status S] [--owner SUBJECT ...] [--attr NAME=VALUE ...]",
		Short: "Register a device",
		Long: "Register a device. ID is what its certificate will carry: 1-64 characters of\n" +
			"A-Z a-z 0-9 . _ @ : -. Owners become ownership relations (<owner> owns\n" +
			"device ID). The device then enrolls with a token from `devices enroll-token`.",
		Args: cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, s *session, args []string) error {
			body, err := cf.body(s.cmd)
			if err != nil {
				return err
			}
			body["id"] = args[0]
			var d model.Device
			raw, err := s.call(ctx, http.MethodPost, "/devices", body, &d)
			if err != nil {
				return err
			}
			return s.done(raw, "Created device %s (%s).", sanitize(qualified(d.TenantID, args[0])), cell(string(d.Status)))
		}),
	}
	cf.add(create, false)

	var uf deviceFlags
	update := &cobra.Command{
		Use:   "update ID [--status S [--reason TEXT]] [--model M] [--serial S] [--firmware V] [--owner SUBJECT ...] [--attr NAME=VALUE ...]",
		Short: "Change a device's registry fields or its status",
		Long: "Change a device; what is not given stays as it is. The result is printed.\n\n" +
			"--owner replaces ALL owners and --attr ALL attributes: repeat the flag for\n" +
			"every value to keep; --clear-owners and --clear-attrs remove them all.\n" +
			"A status change is audited with --reason. decommissioned is final: every\n" +
			"credential of the device is revoked and the device can no longer change.",
		Example: "  fleetgate devices update meter-1 --status quarantined --reason \"tamper alarm\"",
		Args:    cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, s *session, args []string) error {
			path, err := escapePath("devices", args[0])
			if err != nil {
				return err
			}
			body, err := uf.body(s.cmd)
			if err != nil {
				return err
			}
			if len(body) == 0 {
				return errors.New("nothing to update: give --status, --model, --serial, --firmware, --owner, --attr, --clear-owners or --clear-attrs")
			}
			var d model.Device
			raw, err := s.call(ctx, http.MethodPatch, path, body, &d)
			if err != nil {
				return err
			}
			return s.emit(raw, func() error {
				fmt.Fprintf(s.stdout, "Updated device %s.\n", sanitize(qualified(d.TenantID, d.ID)))
				return printDevice(s, &d)
			})
		}),
	}
	uf.add(update, true)

	del := a.deleteCmd("device", "ID", func(args []string) (string, error) { return escapePath("devices", args[0]) })
	del.Long = "Delete a device from the registry. Its live credentials are revoked first\n" +
		"(and stay on the CRL until they expire); its ownership relations go."

	cmd.AddCommand(list, get, create, update, del, a.devicesImportCmd(), a.enrollTokenCmd(), a.credentialsCmd(), a.revokeCredentialCmd())
	cmd.AddCommand(a.devicePSKCmd(), a.deviceTokenCmd())
	return cmd
}

func printDevice(s *session, d *model.Device) error {
	return printFields(s.stdout,
		field{"ID", d.ID}, field{"Tenant", d.TenantID}, field{"Status", string(d.Status)},
		field{"Model", d.Model}, field{"Serial", d.Serial}, field{"Firmware", d.Firmware},
		field{"Owners", strings.Join(d.Owners, ",")}, field{"Attributes", fmtAttrs(d.Attributes)},
		field{"First seen", fmtTimePtr(d.FirstSeen)}, field{"Last seen", fmtTimePtr(d.LastSeen)},
		field{"Created", fmtTime(d.CreatedAt)}, field{"Updated", fmtTime(d.UpdatedAt)})
}

func (a *app) enrollTokenCmd() *cobra.Command {
	var expiresIn string
	cmd := &cobra.Command{
		Use:   "enroll-token ID [--expires-in 24h]",
		Short: "Issue a one-time enrollment token for a device; its secret is printed once",
		Long: "Issue a one-time enrollment token. The device presents it (Authorization:\n" +
			"Bearer fge_...) with its certificate request to obtain its certificate. The\n" +
			"secret goes to stdout alone and is never shown again; store it right away.\n" +
			"It expires after --expires-in (1m to 720h; default 24h).",
		Args: cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, s *session, args []string) error {
			path, err := escapePath("devices", args[0], "enrollment-tokens")
			if err != nil {
				return err
			}
			var body any // none: the server's default lifetime
			if s.cmd.Flags().Changed("expires-in") {
				if d, err := time.ParseDuration(expiresIn); err != nil || d <= 0 {
					return fmt.Errorf("invalid --expires-in %q: want a positive duration such as 24h", expiresIn)
				}
				body = map[string]string{"expires_in": expiresIn}
			}
			var ans struct {
				Token  model.EnrollmentToken `json:"token"`
				Secret string                `json:"secret"`
			}
			raw, err := s.call(ctx, http.MethodPost, path, body, &ans)
			if err != nil {
				return err
			}
			if ans.Secret == "" {
				return fmt.Errorf("the server created enrollment token %s but sent no secret; create another", cell(ans.Token.ID))
			}
			fmt.Fprintf(s.stderr, "Created enrollment token %s for device %s, expires %s.\n",
				cell(ans.Token.ID), cell(args[0]), fmtTime(ans.Token.ExpiresAt))
			fmt.Fprintln(s.stderr, "Warning: the secret below will not be shown again; store it now.")
			if s.json {
				return printJSON(s.stdout, raw)
			}
			_, err = fmt.Fprintln(s.stdout, sanitize(ans.Secret))
			return err
		}),
	}
	cmd.Flags().StringVar(&expiresIn, "expires-in", "", "lifetime such as 24h (1m to 720h; default 24h)")
	return cmd
}

// credentialStatus says whether a device credential still authenticates.
func credentialStatus(c *model.DeviceCredential, now time.Time) string {
	switch {
	case c.RevokedAt != nil:
		if c.RevokeReason != "" {
			return "revoked (" + c.RevokeReason + ")"
		}
		return "revoked"
	case !c.Live(now):
		return "expired"
	}
	return "active"
}

func (a *app) credentialsCmd() *cobra.Command {
	var page pageOpts
	cmd := &cobra.Command{
		Use: "credentials ID", Short: "List a device's credentials (certificates it enrolled)", Args: cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, s *session, args []string) error {
			path, err := escapePath("devices", args[0], "credentials")
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
				t := newTable(s.stdout, "ID", "KIND", "STATUS", "SERIAL", "FINGERPRINT", "NOT AFTER", "CREATED")
				for _, c := range items {
					t.row(c.ID, string(c.Kind), credentialStatus(&c, now), c.Serial, c.Fingerprint, fmtTimePtr(c.NotAfter), fmtTime(c.CreatedAt))
				}
				return t.flush()
			})
		}),
	}
	addPageFlags(cmd, &page, 0, "credentials")
	return cmd
}

// revokeReasons are the CRL reasons (RFC 5280 §5.3.1) the server accepts.
var revokeReasons = []string{"unspecified", "keyCompromise", "affiliationChanged", "superseded", "cessationOfOperation", "privilegeWithdrawn"}

func (a *app) revokeCredentialCmd() *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "revoke ID CREDENTIAL_ID --reason REASON",
		Short: "Revoke a device credential; it stops authenticating and goes on the CRL",
		Long: "Revoke a device credential. --reason is the CRL reason: " + strings.Join(revokeReasons, ", ") + ".\n" +
			"Revoking twice keeps the first time and reason.",
		Args: cobra.ExactArgs(2),
		RunE: a.run(func(ctx context.Context, s *session, args []string) error {
			path, err := escapePath("devices", args[0], "credentials", args[1], "revoke")
			if err != nil {
				return err
			}
			known := false
			for _, r := range revokeReasons {
				known = known || r == reason
			}
			if !known {
				return fmt.Errorf("invalid --reason %q: want one of %s", reason, strings.Join(revokeReasons, ", "))
			}
			var c model.DeviceCredential
			raw, err := s.call(ctx, http.MethodPost, path, map[string]string{"reason": reason}, &c)
			if err != nil {
				return err
			}
			if c.RevokedAt != nil && c.RevokeReason != "" && c.RevokeReason != reason {
				return s.done(raw, "Credential %s of device %s was already revoked at %s (%s); that revocation stands.",
					sanitize(args[1]), sanitize(args[0]), fmtTime(*c.RevokedAt), sanitize(c.RevokeReason))
			}
			return s.done(raw, "Revoked credential %s of device %s (%s).", sanitize(args[1]), sanitize(args[0]), reason)
		}),
	}
	cmd.Flags().StringVar(&reason, "reason", "", "CRL reason: "+strings.Join(revokeReasons, ", ")+" (required)")
	_ = cmd.MarkFlagRequired("reason")
	return cmd
}

// ---- ca

func (a *app) caCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ca",
		Short: "Manage the tenant's device certificate authority",
		Long: "The tenant's device CA signs the certificates devices obtain when they enroll.\n" +
			"Its private key is sealed by the server and never leaves it.",
	}

	var keyType, validity string
	create := &cobra.Command{
		Use:   "create [--key-type ecdsa-p256|ed25519|rsa-2048|rsa-3072|rsa-4096] [--validity DURATION]",
		Short: "Create the tenant's device CA (admins; once per tenant)",
		Args:  cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, s *session, _ []string) error {
			body := map[string]string{}
			if s.cmd.Flags().Changed("key-type") {
				body["key_type"] = keyType
			}
			if s.cmd.Flags().Changed("validity") {
				if d, err := time.ParseDuration(validity); err != nil || d <= 0 {
					return fmt.Errorf("invalid --validity %q: want a duration such as 87600h (24h to 30 years)", validity)
				}
				body["validity"] = validity
			}
			var ans struct {
				Tenant   string    `json:"tenant"`
				KeyType  string    `json:"key_type"`
				NotAfter time.Time `json:"not_after"`
			}
			raw, err := s.call(ctx, http.MethodPost, "/ca", body, &ans)
			if err != nil {
				return err
			}
			return s.done(raw, "Created the device CA of tenant %s (%s), valid until %s. `fleetgate ca get` prints its certificate.",
				cell(ans.Tenant), cell(ans.KeyType), fmtTime(ans.NotAfter))
		}),
	}
	create.Flags().StringVar(&keyType, "key-type", "", "ecdsa-p256 (default), ed25519, rsa-2048, rsa-3072 or rsa-4096")
	create.Flags().StringVar(&validity, "validity", "", "lifetime, 24h to 30 years (default: 10 years)")

	get := &cobra.Command{
		Use:   "get",
		Short: "Print the device CA certificate (PEM), for relying parties and device provisioning",
		Args:  cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, s *session, _ []string) error {
			var text string
			if err := s.client.Do(ctx, http.MethodGet, "/ca", nil, &text); err != nil {
				return err
			}
			certs, err := pemCertificates([]byte(text))
			if err != nil {
				return err
			}
			if s.json {
				return printJSON(s.stdout, map[string]string{"certificate": certs})
			}
			_, err = fmt.Fprint(s.stdout, certs)
			return err
		}),
	}

	var file string
	crl := &cobra.Command{
		Use:   "crl --file FILE",
		Short: "Write the tenant's certificate revocation list (DER) to a file",
		Long: "Fetch a freshly signed CRL of the tenant's revoked device certificates (next\n" +
			"update in 24h) and write it, DER-encoded, to FILE, replacing it atomically so\n" +
			"that a relying party never reads half a CRL. (-o is the output format, as\n" +
			"for every command; the file is --file/-f.)",
		Example: "  fleetgate ca crl -f /srv/pki/devices.crl   # e.g. daily from cron",
		Args:    cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, s *session, _ []string) error {
			var der []byte
			if err := s.client.Do(ctx, http.MethodGet, "/ca/crl", nil, &der); err != nil {
				return err
			}
			rl, err := x509.ParseRevocationList(der)
			if err != nil {
				return fmt.Errorf("the server's answer is not a DER CRL (%v); nothing written", err)
			}
			if err := writeFileAtomic(file, der, 0o644); err != nil {
				return err
			}
			sum := map[string]any{"file": file, "bytes": len(der), "revoked": len(rl.RevokedCertificateEntries),
				"this_update": rl.ThisUpdate.UTC(), "next_update": rl.NextUpdate.UTC()}
			if s.json {
				return printJSON(s.stdout, sum)
			}
			_, err = fmt.Fprintf(s.stdout, "Wrote the CRL (%s, next update %s) to %s.\n",
				plural(len(rl.RevokedCertificateEntries), "revoked certificate"), fmtTime(rl.NextUpdate), sanitize(file))
			return err
		}),
	}
	crl.Flags().StringVarP(&file, "file", "f", "", "where to write the DER CRL (required)")
	_ = crl.MarkFlagRequired("file")

	cmd.AddCommand(create, get, crl)
	return cmd
}

// pemCertificates checks that text is PEM holding certificates and returns
// them re-encoded: whatever else the answer held (a proxy's page, control
// characters) is not printed.
func pemCertificates(text []byte) (string, error) {
	var b strings.Builder
	for {
		blk, rest := pem.Decode(text)
		if blk == nil {
			break
		}
		text = rest
		if blk.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
			return "", fmt.Errorf("the server's CA certificate does not parse: %v", err)
		}
		b.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: blk.Bytes}))
	}
	if b.Len() == 0 {
		return "", errors.New("the server's answer holds no PEM certificate")
	}
	return b.String(), nil
}

// writeFileAtomic writes data to a temporary file beside path and renames
// it over path.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename: nothing to remove
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(perm)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
