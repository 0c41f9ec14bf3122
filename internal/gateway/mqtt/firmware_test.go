package mqttgw

import (
	"testing"

	"github.com/fleetgate/fleetgate/internal/third_party/mochi/packets"
)

func TestConnectFirmware(t *testing.T) {
	tests := []struct {
		name     string
		version  byte
		user     []packets.UserProperty
		username string
		want     string
	}{
		{"MQTT 5 user property", 5, []packets.UserProperty{{Key: "site", Val: "x"}, {Key: "firmware", Val: "1.4.2"}}, "", "1.4.2"},
		{"MQTT 5 property wins over the user name", 5, []packets.UserProperty{{Key: "firmware", Val: "2.0.0"}}, "m;fw=1.0.0", "2.0.0"},
		{"MQTT 5 user name suffix", 5, nil, "meter-17;fw=1.0.0", "1.0.0"},
		{"MQTT 3.1.1 user name suffix", 4, nil, "meter-17;fw=1.4.2", "1.4.2"},
		{"MQTT 3.1.1 ignores properties", 4, []packets.UserProperty{{Key: "firmware", Val: "9.9.9"}}, "meter-17", ""},
		{"nothing reported", 5, nil, "meter-17", ""},
		{"property name is exact", 5, []packets.UserProperty{{Key: "Firmware", Val: "1.0.0"}}, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pk := &packets.Packet{ProtocolVersion: tc.version}
			pk.Properties.User = tc.user
			pk.Connect.Username = []byte(tc.username)
			if got := connectFirmware(pk); got != tc.want {
				t.Fatalf("connectFirmware = %q, want %q", got, tc.want)
			}
		})
	}
}
