package admin

import (
	"errors"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/fleetgate/fleetgate/internal/audit"
	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/store"
)

// Devices and their credentials are run by the platform team, like
// applications: admins and operators write, every role reads. Creating the
// tenant CA is reserved to admins (caRoles).
var (
	deviceRoles = consumerRoles
	caRoles     = []model.Role{model.RoleAdmin}
)

// DeviceOptions configure device identity. They are set once, by the
// composition root, before the server serves requests.
type DeviceOptions struct {
	// KEK is the 32-byte key-encryption key that seals tenant CA private
	// keys at rest (see pki.ParseKEK). Without it the registry works but
	// CA creation, enrollment and CRL signing answer 503: a CA key is
	// never stored in clear.
	KEK []byte
	// CertValidity is the lifetime of issued device certificates
	// (0: pki.DefaultLeafValidity, 90 days).
	CertValidity time.Duration
}

// deviceState is the device-identity state of one Server.
type deviceState struct {
	opts atomic.Pointer[DeviceOptions]
}

// devices returns this server's device state.
func (s *Server) devices() *deviceState { return &s.dev }

// SetDeviceOptions configures device identity. The composition root calls
// it after New and before serving; later calls replace the options
// atomically (a KEK rotation restarts the process anyway).
func (s *Server) SetDeviceOptions(o DeviceOptions) {
	o.KEK = slices.Clone(o.KEK)
	s.devices().opts.Store(&o)
}

func (d *deviceState) options() DeviceOptions {
	if o := d.opts.Load(); o != nil {
		return *o
	}
	return DeviceOptions{}
}

// deviceRoutes lists the device-identity routes (registry, CA, enrollment,
// revocation). They live in their own files so the device work can grow
// without touching the core route table. The device-facing enrollment
// endpoint is not among them: devices do not hold operator tokens, so it is
// served by EnrollHandler on the data-plane listener.
func (s *Server) deviceRoutes() []route {
	return []route{
		{"GET", "/devices", s.listDevices},
		{"POST", "/devices", s.createDevice},
		{"POST", "/devices/import", s.importDevices},
		{"GET", "/devices/{device}", s.getDevice},
		{"PATCH", "/devices/{device}", s.updateDevice},
		{"DELETE", "/devices/{device}", s.deleteDevice},
		{"POST", "/devices/{device}/enrollment-tokens", s.createEnrollmentToken},
		{"GET", "/devices/{device}/credentials", s.listDeviceCredentials},
		{"POST", "/devices/{device}/credentials/{credential}/revoke", s.revokeDeviceCredential},
		{"GET", "/ca", s.getCA},
		{"POST", "/ca", s.createCA},
		{"GET", "/ca/crl", s.getCRL},
	}
}

// deviceBody is a device as clients write it, in POST /devices and in each
// row of an import.
type deviceBody struct {
	ID         string            `json:"id"`
	Model      string            `json:"model"`
	Serial     string            `json:"serial"`
	Owners     []string          `json:"owners"`
	Attributes map[string]string `json:"attributes"`
	Status     string            `json:"status"`
	Firmware   string            `json:"firmware"`
}

// validate checks b; ptr prefixes every pointer ("" for a single device,
// "/rows/3" in an import). An empty status means pending.
func (b *deviceBody) validate(ptr string) []FieldError {
	var errs []FieldError
	if !model.ValidDeviceID(b.ID) {
		errs = append(errs, FieldError{Pointer: ptr + "/id", Detail: "device id must be 1-64 characters of A-Z a-z 0-9 . _ @ : -"})
	}
	errs = append(errs, collectErrs(maxLen(ptr+"/model", b.Model, 128), maxLen(ptr+"/serial", b.Serial, 128), maxLen(ptr+"/firmware", b.Firmware, 64))...)
	if b.Status == "" {
		b.Status = string(model.DevicePending)
	}
	if st := model.DeviceStatus(b.Status); !st.Valid() || st == model.DeviceDecommissioned {
		errs = append(errs, FieldError{Pointer: ptr + "/status", Detail: "one of pending, active, suspended, quarantined"})
	}
	errs = append(errs, validOwners(ptr+"/owners", b.Owners)...)
	errs = append(errs, validAttributes(ptr+"/attributes", b.Attributes)...)
	return errs
}

func validOwners(ptr string, owners []string) []FieldError {
	var errs []FieldError
	if len(owners) > 32 {
		return []FieldError{{Pointer: ptr, Detail: "at most 32 owners"}}
	}
	for i, o := range owners {
		if !subjectRe.MatchString(o) {
			errs = append(errs, FieldError{Pointer: ptr + "/" + itoa(i), Detail: "a subject such as user:alice or app:fleet-ops"})
		} else if slices.Index(owners, o) != i {
			errs = append(errs, FieldError{Pointer: ptr + "/" + itoa(i), Detail: "listed twice"})
		}
	}
	return errs
}

func validAttributes(ptr string, attrs map[string]string) []FieldError {
	var errs []FieldError
	if len(attrs) > 64 {
		return []FieldError{{Pointer: ptr, Detail: "at most 64 attributes"}}
	}
	for k, v := range attrs {
		if !attrKeyRe.MatchString(k) {
			errs = append(errs, FieldError{Pointer: ptr + "/" + escape(k), Detail: "attribute names are lowercase identifiers"})
		} else if len(v) > 256 {
			errs = append(errs, FieldError{Pointer: ptr + "/" + escape(k), Detail: "at most 256 characters"})
		}
	}
	slices.SortFunc(errs, func(a, b FieldError) int { return compareStrings(a.Pointer, b.Pointer) })
	return errs
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (b *deviceBody) device(tenant string) *model.Device {
	t := now()
	return &model.Device{ID: b.ID, TenantID: tenant, Model: b.Model, Serial: b.Serial, Owners: b.Owners, Attributes: b.Attributes,
		Status: model.DeviceStatus(b.Status), Firmware: b.Firmware, CreatedAt: t, UpdatedAt: t}
}

// syncOwners makes the ownership relations "<owner> owns device <id>"
// match owners, so identity bindings (owned: device) follow the registry.
// Existing relations are looked up rather than inserted blindly: a unique
// violation would abort the whole PostgreSQL transaction.
func syncOwners(tx store.Tx, tenant, id string, before, after []string) error {
	for _, o := range before {
		if slices.Contains(after, o) {
			continue
		}
		err := tx.RemoveOwnership(&model.Ownership{TenantID: tenant, Subject: o, ObjectType: "device", ObjectID: id})
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	for _, o := range after {
		have, err := tx.ListOwnerships(tenant, store.OwnershipFilter{Subject: o, ObjectType: "device", ObjectID: id, Limit: 1})
		if err != nil {
			return err
		}
		if len(have) > 0 {
			continue
		}
		if err := tx.AddOwnership(&model.Ownership{TenantID: tenant, Subject: o, ObjectType: "device", ObjectID: id, CreatedAt: now()}); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) listDevices(w http.ResponseWriter, r *http.Request, p *principal) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	var items []model.Device
	if err := s.st.View(r.Context(), func(tx store.Tx) (err error) { items, err = tx.ListDevices(p.tenant, pg); return }); err != nil {
		return err
	}
	return writeList(w, items, pg, func(d model.Device) string { return d.ID })
}

func (s *Server) getDevice(w http.ResponseWriter, r *http.Request, p *principal) error {
	var d *model.Device
	if err := s.st.View(r.Context(), func(tx store.Tx) (err error) { d, err = tx.GetDevice(p.tenant, r.PathValue("device")); return }); err != nil {
		return notFoundAs(err, "device")
	}
	return writeJSON(w, http.StatusOK, d)
}

func (s *Server) createDevice(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := p.require(deviceRoles...); err != nil {
		return err
	}
	var b deviceBody
	if err := decodeJSON(w, r, maxBody, &b); err != nil {
		return err
	}
	if errs := b.validate(""); errs != nil {
		return invalid("invalid device", errs...)
	}
	d := b.device(p.tenant)
	err := s.mutate(r.Context(), p, func(tx store.Tx, rec *model.AuditRecord) error {
		if err := tx.CreateDevice(d); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return conflict("device "+d.ID+" already exists", FieldError{Pointer: "/id", Detail: "already exists"})
			}
			return err
		}
		rec.Action, rec.ObjectType, rec.ObjectID, rec.AfterDigest = "device.create", "device", d.ID, audit.Digest(d)
		return syncOwners(tx, p.tenant, d.ID, nil, d.Owners)
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, d)
}

// updateDevice changes registry fields and the status. A status change is
// audited as device.status with from, to and the reason; decommissioning is
// terminal and revokes every live credential of the device in the same
// transaction, so the device cannot come back by any credential.
func (s *Server) updateDevice(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := p.require(deviceRoles...); err != nil {
		return err
	}
	var b struct {
		Model      *string           `json:"model"`
		Serial     *string           `json:"serial"`
		Owners     []string          `json:"owners"`
		Attributes map[string]string `json:"attributes"`
		Status     *string           `json:"status"`
		Firmware   *string           `json:"firmware"`
		Reason     string            `json:"reason"`
	}
	if err := decodeJSON(w, r, maxBody, &b); err != nil {
		return err
	}
	var d *model.Device
	err := s.mutate(r.Context(), p, func(tx store.Tx, rec *model.AuditRecord) error {
		var err error
		if d, err = tx.GetDevice(p.tenant, r.PathValue("device")); err != nil {
			return notFoundAs(err, "device")
		}
		rec.BeforeDigest = audit.Digest(d)
		from := d.Status
		if from == model.DeviceDecommissioned {
			return conflict("device " + d.ID + " is decommissioned; a decommissioned device cannot change")
		}
		before := d.Owners
		body := deviceBody{ID: d.ID, Model: deref(b.Model, d.Model), Serial: deref(b.Serial, d.Serial), Owners: d.Owners,
			Attributes: d.Attributes, Status: string(d.Status), Firmware: deref(b.Firmware, d.Firmware)}
		if b.Owners != nil {
			body.Owners = b.Owners
		}
		if b.Attributes != nil {
			body.Attributes = b.Attributes
		}
		errs := body.validate("")
		errs = slices.DeleteFunc(errs, func(e FieldError) bool { return e.Pointer == "/status" })
		to := from
		if b.Status != nil {
			to = model.DeviceStatus(*b.Status)
			if !to.Valid() {
				errs = append(errs, FieldError{Pointer: "/status", Detail: "one of pending, active, suspended, quarantined, decommissioned"})
			}
		}
		errs = append(errs, collectErrs(maxLen("/reason", b.Reason, 1000))...)
		if errs != nil {
			return invalid("invalid device", errs...)
		}
		d.Model, d.Serial, d.Owners, d.Attributes, d.Firmware, d.Status, d.UpdatedAt = body.Model, body.Serial, body.Owners, body.Attributes, body.Firmware, to, now()
		rec.Action, rec.ObjectType, rec.ObjectID, rec.AfterDigest = "device.update", "device", d.ID, audit.Digest(d)
		if to != from {
			rec.Action = "device.status"
			detail := map[string]any{"from": from, "to": to, "reason": b.Reason}
			if to == model.DeviceDecommissioned {
				n, err := revokeAll(tx, p.tenant, d.ID, "cessationOfOperation")
				if err != nil {
					return err
				}
				detail["revoked_credentials"] = n
			}
			rec.Detail = jsonDetail(detail)
		}
		if err := tx.UpdateDevice(d); err != nil {
			return err
		}
		return syncOwners(tx, p.tenant, d.ID, before, d.Owners)
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, d)
}

// deleteDevice removes a device from the registry. Its live credentials are
// revoked first (and kept, for the CRL), and its ownership relations go.
func (s *Server) deleteDevice(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := p.require(deviceRoles...); err != nil {
		return err
	}
	err := s.mutate(r.Context(), p, func(tx store.Tx, rec *model.AuditRecord) error {
		d, err := tx.GetDevice(p.tenant, r.PathValue("device"))
		if err != nil {
			return notFoundAs(err, "device")
		}
		n, err := revokeAll(tx, p.tenant, d.ID, "cessationOfOperation")
		if err != nil {
			return err
		}
		rec.Action, rec.ObjectType, rec.ObjectID, rec.BeforeDigest = "device.delete", "device", d.ID, audit.Digest(d)
		rec.Detail = jsonDetail(map[string]int{"revoked_credentials": n})
		if err := syncOwners(tx, p.tenant, d.ID, d.Owners, nil); err != nil {
			return err
		}
		return tx.DeleteDevice(p.tenant, d.ID)
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// revokeAll revokes every live credential of a device, returning how many.
func revokeAll(tx store.Tx, tenant, device, reason string) (int, error) {
	creds, err := tx.ListDeviceCredentials(tenant, device, store.Page{Limit: -1})
	if err != nil {
		return 0, err
	}
	n, at := 0, now()
	for i := range creds {
		c := &creds[i]
		if c.RevokedAt != nil {
			continue
		}
		c.RevokedAt, c.RevokeReason = &at, reason
		if err := tx.UpdateDeviceCredential(c); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
