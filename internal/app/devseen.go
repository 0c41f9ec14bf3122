package app

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fleetgate/fleetgate/internal/devobs"
	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/policy"
	"github.com/fleetgate/fleetgate/internal/store"
)

// seenBatch bounds the devices written per store transaction, so a large
// flush never holds the (SQLite: single) writer lock for long.
const seenBatch = 500

// flushSeen writes the devices seen since the last flush to the store:
// first_seen once, last_seen forward, and a changed firmware version with
// an audit record. The firmware change is audited with the device as the
// actor ("device:<id>", as enrollment is): the device asserted it, the
// gateway only relayed it, and the audit trail should say who claimed
// what. A device deleted in the meantime is skipped. A failed batch stays
// pending and is retried by the next flush. When a firmware changed, the
// snapshot is rebuilt so that device.firmware in CEL rules follows.
func (a *App) flushSeen(ctx context.Context) (int, error) {
	us := a.devices.Collect()
	written, firmware := 0, false
	for start := 0; start < len(us); start += seenBatch {
		chunk := us[start:min(start+seenBatch, len(us))]
		changed := false
		err := a.store.Update(ctx, func(tx store.Tx) error {
			changed = false
			for i := range chunk {
				u := &chunk[i]
				prev, ch, err := tx.MarkDeviceSeen(u.Tenant, u.Device, u.LastSeen, u.Firmware)
				if errors.Is(err, store.ErrNotFound) {
					continue
				}
				if err != nil {
					return err
				}
				if !ch {
					continue
				}
				changed = true
				detail, _ := json.Marshal(map[string]string{"from": prev, "to": u.Firmware})
				if err := tx.AppendAudit(&model.AuditRecord{TenantID: u.Tenant, Actor: "device:" + u.Device, Action: "device.firmware_reported",
					ObjectType: "device", ObjectID: u.Device, Detail: detail}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return written, err
		}
		a.devices.Commit(chunk)
		written += len(chunk)
		firmware = firmware || changed
	}
	if firmware {
		a.builder.Notify()
	}
	return written, nil
}

// runSeenFlusher flushes every interval until ctx ends, and forgets
// devices idle for three intervals (they are re-added when seen again).
func (a *App) runSeenFlusher(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if _, err := a.flushSeen(ctx); err != nil && ctx.Err() == nil {
				a.log.Warn("device sightings not written; retrying at the next flush", "err", err)
			}
			a.devices.Evict(3*interval, now)
		}
	}
}

// withHandshakeObserver returns a copy of tc that records every client
// certificate the control plane issued but revoked, or that belongs to a
// device that is not active, as a refused attempt with the remote address.
// It serves both TLS data-plane listeners (HTTPS and MQTTS), so each
// presentation is counted once per handshake whatever the protocol above
// TLS. The handshake itself goes on: the engine refuses the credential on
// the first request or CONNECT with a precise answer.
//
// The remote address is not part of tls.ConnectionState, hence one small
// Config per connection (GetConfigForClient); session ticket keys stay
// those of tc, as crypto/tls documents for configs returned this way.
//
// chain, when not nil, verifies the client's certificate chain (see
// chainVerifier) in the same callback, after the attempt is recorded.
func (a *App) withHandshakeObserver(tc *tls.Config, listener string, chain *chainVerifier) *tls.Config {
	base := tc.Clone()
	tc = tc.Clone()
	tc.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		remote := ""
		if hello.Conn != nil {
			remote, _, _ = net.SplitHostPort(hello.Conn.RemoteAddr().String())
		}
		c := base.Clone()
		c.VerifyConnection = func(cs tls.ConnectionState) error {
			now := time.Now()
			if len(cs.PeerCertificates) > 0 {
				a.devices.Refused(a.engine.Snapshot(), policy.Credentials{PeerCert: cs.PeerCertificates[0]}, listener, remote, now)
			}
			if chain != nil {
				return chain.verify(cs.PeerCertificates, now)
			}
			return nil
		}
		return c, nil
	}
	return tc
}

// registerDeviceMetrics exposes the recorder's counters on /metrics:
// malformed firmware reports (ignored), sightings dropped at the cap, and
// refused attempts by known credentials.
func (a *App) registerDeviceMetrics() {
	for _, c := range []struct {
		name, help string
		get        func(devobs.Stats) float64
	}{
		{"fleetgate_device_firmware_malformed_total", "Firmware versions reported by devices that are not semantic versions (ignored).",
			func(s devobs.Stats) float64 { return float64(s.BadFirmware) }},
		{"fleetgate_device_sightings_dropped_total", "Device sightings not recorded because the tracked-device cap was reached.",
			func(s devobs.Stats) float64 { return float64(s.Dropped) }},
		{"fleetgate_refused_credential_attempts_total", "Data-plane attempts with revoked credentials or by devices that are not active.",
			func(s devobs.Stats) float64 { return float64(s.AttemptsTotal) }},
	} {
		get := c.get
		a.metrics.Registry().MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: c.name, Help: c.help},
			func() float64 { return get(a.devices.Stats()) }))
	}
}
