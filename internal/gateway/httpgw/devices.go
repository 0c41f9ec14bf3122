package httpgw

import (
	"net/http"

	"github.com/fleetgate/fleetgate/internal/devobs"
	"github.com/fleetgate/fleetgate/internal/policy"
)

// observe feeds Options.Devices with one decision: an authenticated device
// is seen (with the firmware it reports, even when the request is then
// refused by authorization: it did reach the gateway with a valid
// credential), and a refused API key or device token is recorded when
// the control plane revoked it. Client certificates are not looked at here: the TLS
// handshake already recorded them once per connection.
func (g *Gateway) observe(s *policy.Snapshot, req *policy.Request, d *policy.Decision, r *http.Request) {
	if d.Principal != nil {
		g.o.Devices.Seen(d.Principal, r.Header.Get(devobs.FirmwareHeader), req.Now)
		return
	}
	if d.Reason == policy.ReasonBadCredentials && (req.Credentials.APIKey != "" || req.Credentials.Bearer != "") {
		g.o.Devices.Refused(s, policy.Credentials{APIKey: req.Credentials.APIKey, Bearer: req.Credentials.Bearer}, "http", req.ClientIP, req.Now)
	}
}
