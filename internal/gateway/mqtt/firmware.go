package mqttgw

import (
	"github.com/fleetgate/fleetgate/internal/devobs"
	"github.com/fleetgate/fleetgate/internal/third_party/mochi/packets"
)

// connectFirmware returns the firmware version a CONNECT reports: the
// MQTT 5 user property "firmware" or, for clients without user properties
// (3.1.1), a ";fw=<version>" suffix of the user name. "" when none; the
// value is validated by the recorder.
func connectFirmware(pk *packets.Packet) string {
	if pk.ProtocolVersion == 5 {
		for _, u := range pk.Properties.User {
			if u.Key == devobs.FirmwareProperty {
				return u.Val
			}
		}
	}
	return devobs.FirmwareFromUsername(string(pk.Connect.Username))
}
