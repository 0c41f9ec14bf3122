package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

// TestPublishCodec: what the generator encodes, mochi's codec decodes to
// the same topic, id and payload, and the generator parses it back.
func TestPublishCodec(t *testing.T) {
	for _, tc := range []struct {
		name    string
		version byte
		qos     byte
		id      uint16
		size    int
	}{
		{name: "3.1.1 qos0", version: 4, qos: 0, size: 64},
		{name: "3.1.1 qos1", version: 4, qos: 1, id: 7, size: 64},
		{name: "5 qos0", version: 5, qos: 0, size: 45},
		{name: "5 qos1 long", version: 5, qos: 1, id: 65535, size: 300},
	} {
		t.Run(tc.name, func(t *testing.T) {
			payload := newPayload(tc.size, 42)
			putDigits(payload[offTime:offTime+19], 1234567890)
			b := appendPublish(nil, tc.version, "fleet/dev42/telemetry", tc.qos, tc.id, payload)
			h, body, err := readPacket(bufio.NewReader(bytes.NewReader(b)), new([]byte))
			if err != nil {
				t.Fatal(err)
			}
			pk := packets.Packet{ProtocolVersion: tc.version}
			if err := pk.FixedHeader.Decode(h); err != nil {
				t.Fatal(err)
			}
			if err := pk.PublishDecode(body); err != nil {
				t.Fatalf("mochi decode: %v", err)
			}
			if pk.TopicName != "fleet/dev42/telemetry" || !bytes.Equal(pk.Payload, payload) || pk.FixedHeader.Qos != tc.qos || (tc.qos > 0 && pk.PacketID != tc.id) {
				t.Fatalf("mochi decoded %+v", pk)
			}
			p, err := parsePublish(h, body, tc.version)
			if err != nil || string(p.topic) != "fleet/dev42/telemetry" || !bytes.Equal(p.payload, payload) || (tc.qos > 0 && p.id != tc.id) {
				t.Fatalf("parsed %+v %v", p, err)
			}
			if j, _ := getDigits(p.payload[offPub : offPub+3]); j != 42 {
				t.Fatalf("publisher %d", j)
			}
			if ts, _ := getDigits(p.payload[offTime : offTime+19]); ts != 1234567890 {
				t.Fatalf("time %d", ts)
			}
		})
	}
}

// TestConnectCodec: mochi decodes the generator's CONNECT.
func TestConnectCodec(t *testing.T) {
	for _, v := range []byte{4, 5} {
		b := appendConnect(nil, dialOptions{version: v, clientID: "dev01", user: "dev01", password: "secret", keepAlive: 60})
		h, body, err := readPacket(bufio.NewReader(bytes.NewReader(b)), new([]byte))
		if err != nil {
			t.Fatal(err)
		}
		pk := packets.Packet{}
		_ = pk.FixedHeader.Decode(h)
		if err := pk.ConnectDecode(body); err != nil {
			t.Fatalf("v%d: %v", v, err)
		}
		if pk.ProtocolVersion != v || pk.Connect.ClientIdentifier != "dev01" || string(pk.Connect.Username) != "dev01" ||
			string(pk.Connect.Password) != "secret" || !pk.Connect.Clean || pk.Connect.Keepalive != 60 {
			t.Fatalf("v%d: %+v", v, pk.Connect)
		}
	}
}

// TestReadPacketErrors: malformed and oversized input is an error.
func TestReadPacketErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{name: "five length bytes", in: []byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x01}},
		{name: "larger than the generator reads", in: []byte{0x30, 0x80, 0x80, 0x10}},
		{name: "truncated body", in: []byte{0x30, 10, 0, 3, 'a'}},
		{name: "empty", in: nil},
	} {
		if _, _, err := readPacket(bufio.NewReader(bytes.NewReader(tc.in)), new([]byte)); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
	for _, body := range [][]byte{{}, {0, 9, 'a'}, {0, 1, 'a', 0}} {
		if _, err := parsePublish(0x32, body, 5); err == nil {
			t.Errorf("publish body %x: no error", body)
		}
	}
}

// FuzzReadPacket: any byte stream is read and parsed without a panic, and
// a parsed PUBLISH's slices stay inside the packet.
func FuzzReadPacket(f *testing.F) {
	f.Add(appendPublish(nil, 5, "a/b", 1, 3, []byte("hello")), byte(5))
	f.Add(appendPublish(nil, 4, "a", 0, 0, nil), byte(4))
	f.Add([]byte{0x30, 0xff, 0xff, 0xff, 0x7f}, byte(4))
	f.Fuzz(func(t *testing.T, in []byte, version byte) {
		r := bufio.NewReader(bytes.NewReader(in))
		var buf []byte
		for range 16 {
			h, body, err := readPacket(r, &buf)
			if err != nil {
				return
			}
			if len(body) > maxPacket {
				t.Fatalf("%d-byte body", len(body))
			}
			if p, err := parsePublish(h, body, version); err == nil && len(p.topic)+len(p.payload) > len(body) {
				t.Fatal("slices outside the packet")
			}
		}
	})
}

// TestPubsubAgainstMosquitto runs the load generator briefly against the
// real Mosquitto on 127.0.0.1:1883 (anonymous there), at both QoS levels
// and both protocol versions, paced and unpaced: every message is
// delivered and its latency sampled.
func TestPubsubAgainstMosquitto(t *testing.T) {
	var b [4]byte
	_, _ = rand.Read(b[:])
	ns := "fgbench-test-" + hex.EncodeToString(b[:])
	for _, tc := range []struct {
		name    string
		version byte
		qos     byte
		rate    float64
	}{
		{name: "3.1.1 qos0 unpaced", version: 4, qos: 0},
		{name: "5 qos1 unpaced", version: 5, qos: 1},
		{name: "3.1.1 qos0 paced", version: 4, qos: 0, rate: 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := pubsubConfig{dial: dialOptions{addr: "127.0.0.1:1883", version: tc.version, keepAlive: 30, timeout: 5 * time.Second},
				qos: tc.qos, pubs: 4, subs: 2, size: 64, window: 4, rate: tc.rate, warmup: 200 * time.Millisecond,
				duration: 500 * time.Millisecond, topic: ns + "/%s/t", pid: "self", maxSample: 1 << 16, subCred: credential{ns + "-sub", "x"}}
			for i := range c.pubs {
				c.pubCreds = append(c.pubCreds, credential{fmt.Sprintf("%s-p%d", ns, i), "x"})
			}
			res, err := runPubsub(c)
			if err != nil {
				t.Fatal(err)
			}
			if res.delivered == 0 || res.samples == 0 || res.p50 <= 0 || res.p99 < res.p50 || res.nacks != 0 {
				t.Fatalf("result %s", res)
			}
			if tc.rate > 0 && (float64(res.delivered)/res.secs > 2*tc.rate) {
				t.Fatalf("paced at %v but delivered %s", tc.rate, res)
			}
		})
	}
}

// TestParseCreds: the -creds file format and its errors.
func TestParseCreds(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		pubs     int
		ok       bool
	}{
		{name: "valid", in: "# users\npub dev00 a\npub dev01 b\nsub backend c\n", pubs: 2, ok: true},
		{name: "no subscriber", in: "pub dev00 a\n"},
		{name: "bad role", in: "pub dev00 a\nsub b c\nboth x y\n"},
		{name: "missing password", in: "pub dev00\nsub b c\n"},
	} {
		pubs, _, err := parseCreds(tc.in)
		if (err == nil) != tc.ok || len(pubs) != tc.pubs {
			t.Errorf("%s: %d publishers, err %v", tc.name, len(pubs), err)
		}
	}
}
