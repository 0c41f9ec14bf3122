// SPDX-License-Identifier: MIT
// SPDX-FileCopyrightText: 2023 mochi-mqtt, mochi-co
// SPDX-FileContributor: mochi-co

package mqtt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/xid"

	"github.com/fleetgate/fleetgate/internal/third_party/mochi/mempool"
	"github.com/fleetgate/fleetgate/internal/third_party/mochi/packets"
)

const (
	defaultKeepalive             uint16 = 10 // the default connection keepalive value in seconds.
	defaultClientProtocolVersion byte   = 4  // the default mqtt protocol version of connecting clients (if somehow unspecified).
	minimumKeepalive             uint16 = 5  // the minimum recommended keepalive - values under with display a warning.
)

var (
	ErrMinimumKeepalive = errors.New("client keepalive is below minimum recommended value and may exhibit connection instability")
)

// ReadFn is the function signature for the function used for reading and processing new packets.
type ReadFn func(*Client, packets.Packet) error

// Clients contains a map of the clients known by the broker.
type Clients struct {
	internal map[string]*Client // clients known by the broker, keyed on client id.
	sync.RWMutex
}

// NewClients returns an instance of Clients.
func NewClients() *Clients {
	return &Clients{
		internal: make(map[string]*Client),
	}
}

// Add adds a new client to the clients map, keyed on client id.
func (cl *Clients) Add(val *Client) {
	cl.Lock()
	defer cl.Unlock()
	cl.internal[val.ID] = val
}

// GetAll returns all the clients.
func (cl *Clients) GetAll() map[string]*Client {
	cl.RLock()
	defer cl.RUnlock()
	m := map[string]*Client{}
	for k, v := range cl.internal {
		m[k] = v
	}
	return m
}

// Get returns the value of a client if it exists.
func (cl *Clients) Get(id string) (*Client, bool) {
	cl.RLock()
	defer cl.RUnlock()
	val, ok := cl.internal[id]
	return val, ok
}

// Len returns the length of the clients map.
func (cl *Clients) Len() int {
	cl.RLock()
	defer cl.RUnlock()
	val := len(cl.internal)
	return val
}

// Delete removes a client from the internal map.
func (cl *Clients) Delete(id string) {
	cl.Lock()
	defer cl.Unlock()
	delete(cl.internal, id)
}

// GetByListener returns clients matching a listener id.
func (cl *Clients) GetByListener(id string) []*Client {
	cl.RLock()
	defer cl.RUnlock()
	// fleetgate: was cl.Len(), a second RLock while holding one, which
	// deadlocks against a waiting writer (Delete of a client that is
	// disconnecting while the server shuts down: found as a 10-minute hang
	// in internal/gateway/mqtt's tests).
	clients := make([]*Client, 0, len(cl.internal))
	for _, client := range cl.internal {
		if client.Net.Listener == id && !client.Closed() {
			clients = append(clients, client)
		}
	}
	return clients
}

// Client contains information about a client known by the broker.
type Client struct {
	Properties   ClientProperties // client properties
	State        ClientState      // the operational state of the client.
	Net          ClientConnection // network connection state of the client
	ID           string           // the client id.
	ops          *ops             // ops provides a reference to server ops.
	sync.RWMutex                  // mutex
}

// ClientConnection contains the connection transport and metadata for the client.
type ClientConnection struct {
	Conn     net.Conn    // the net.Conn used to establish the connection
	bconn    *connReader // reads packets from Conn (fleetgate: was a *bufio.Reader, see connReader)
	wmu      sync.Mutex  // serializes writes to Conn (fleetgate: replaces outbuf, see outQueue)
	Remote   string      // the remote address of the client
	Listener string      // listener id of the client
	Inline   bool        // if true, the client is the built-in 'inline' embedded client

	// fleetgate: acknowledgements held back while the reader handles
	// pipelined packets (see deferAcks), and whether it does; under wmu
	acks      *bytes.Buffer
	deferring bool
}

// ClientProperties contains the properties which define the client behaviour.
type ClientProperties struct {
	Props           packets.Properties
	Will            Will
	Username        []byte
	ProtocolVersion byte
	Clean           bool
}

// Will contains the last will and testament details for a client connection.
type Will struct {
	Payload           []byte                 // -
	User              []packets.UserProperty // -
	TopicName         string                 // -
	Flag              uint32                 // 0,1
	WillDelayInterval uint32                 // -
	Qos               byte                   // -
	Retain            bool                   // -
}

// ClientState tracks the state of the client.
type ClientState struct {
	TopicAliases    TopicAliases       // a map of topic aliases
	stopCause       atomic.Value       // reason for stopping
	Inflight        *Inflight          // a map of in-flight qos messages
	Subscriptions   *Subscriptions     // a map of the subscription filters a client maintains
	disconnected    int64              // the time the client disconnected in unix time, for calculating expiry
	outbound        outQueue           // queue for pending outbound packets (fleetgate: was a channel, see outQueue)
	endOnce         sync.Once          // only end once
	isTakenOver     atomic.Bool        // used to identify orphaned clients
	packetID        uint32             // the current highest packetID
	open            context.Context    // indicate that the client is open for packet exchange
	cancelOpen      context.CancelFunc // cancel function for open context
	outboundQty     int32              // number of packets queued or being written (fleetgate: see outQueue)
	Keepalive       uint16             // the number of seconds the connection can wait
	ServerKeepalive bool               // keepalive was set by the server
	// fleetgate: when refreshDeadline last moved the deadline (unix ns),
	// and for which keepalive
	deadlineSet       int64
	deadlineKeepalive uint16
	// fleetgate: the reader's own copy of Net.deferring, so it takes wmu
	// only when that changes
	deferringAcks bool
}

// newClient returns a new instance of Client. This is almost exclusively used by Server
// for creating new clients, but it lives here because it's not dependent.
func newClient(c net.Conn, o *ops) *Client {
	ctx, cancel := context.WithCancel(context.Background())
	cl := &Client{
		State: ClientState{
			Inflight:      NewInflights(),
			Subscriptions: NewSubscriptions(),
			TopicAliases:  NewTopicAliases(o.options.Capabilities.TopicAliasMaximum),
			open:          ctx,
			cancelOpen:    cancel,
			Keepalive:     defaultKeepalive,
		},
		Properties: ClientProperties{
			ProtocolVersion: defaultClientProtocolVersion, // default protocol version
		},
		ops: o,
	}

	if c != nil {
		cl.Net = ClientConnection{
			Conn:   c,
			bconn:  newConnReader(c, o.options.ClientNetReadBufferSize),
			Remote: c.RemoteAddr().String(),
		}
	}

	return cl
}

// enqueue encodes pk and queues its bytes for the client's writer,
// starting one if none runs, and reports false when the queue is full
// (see outQueue.push). A packet that cannot be encoded for this client
// (larger than its Maximum Packet Size) is discarded as if sent
// [MQTT-3.1.2-25] and counts as queued.
//
// fleetgate: replaces the send on the outbound channel and the writer
// goroutine upstream started at connect (WriteLoop); see outQueue. pk is
// the caller's own copy: it is prepared for this client in place, and not
// kept. The caller (publishToClient) has checked the connection is open.
func (cl *Client) enqueue(pk *packets.Packet) bool {
	buf := mempool.GetBuffer()
	defer mempool.PutBuffer(buf)
	err := cl.encodePacket(pk, buf)
	if err != nil {
		cl.ops.log.Debug("failed publishing packet", "error", err, "client", cl.ID, "type", pk.FixedHeader.Type, "topic", pk.TopicName)
		return true
	}
	ok, start := cl.State.outbound.push(buf.Bytes(), pk.FixedHeader.Type == packets.Publish,
		cl.ops.options.Capabilities.MaximumClientWritesPending, &cl.State.outboundQty)
	if !ok {
		return false
	}
	if start {
		go cl.writeLoop()
	}
	cl.ops.hooks.OnPacketSent(cl, *pk, buf.Bytes()) // fleetgate: once queued, not once written
	return true
}

// writeLoop writes what is queued until the queue is empty, then ends.
func (cl *Client) writeLoop() {
	var spare *bytes.Buffer
	for {
		b, n, msgs, ok := cl.State.outbound.take(spare)
		if !ok {
			return
		}
		cl.writeQueued(b.Bytes(), n, msgs)
		spare = b
	}
}

// writeQueued writes n queued packets, msgs of them PUBLISH, with one
// write, and releases their places in the bound.
func (cl *Client) writeQueued(b []byte, n, msgs int32) {
	if err := cl.write(b, n, msgs); err != nil {
		cl.ops.log.Debug("failed writing queued packets", "error", err, "client", cl.ID, "packets", n)
	}
	atomic.AddInt32(&cl.State.outboundQty, -n)
}

// write writes encoded packets to the connection, serialized with every
// other write to it, and counts them as sent. Acknowledgements held back
// by deferAcks go first, in the same system call.
func (cl *Client) write(b []byte, n, msgs int32) error {
	if cl.Closed() {
		return ErrConnectionClosed
	}
	cl.Net.wmu.Lock()
	held := cl.Net.acks != nil
	if held {
		cl.Net.acks.Write(b)
		b = cl.Net.acks.Bytes()
	}
	w, err := cl.Net.Conn.Write(b)
	if held {
		cl.dropAcks()
	}
	cl.Net.wmu.Unlock()
	atomic.AddInt64(&cl.ops.info.BytesSent, int64(w))
	if err != nil {
		return err
	}
	atomic.AddInt64(&cl.ops.info.PacketsSent, int64(n))
	atomic.AddInt64(&cl.ops.info.MessagesSent, int64(msgs))
	return nil
}

// isAck reports whether a packet of type t answers one the client sent,
// so that it may be held back while the reader handles pipelined packets.
func isAck(t byte) bool {
	switch t {
	case packets.Puback, packets.Pubrec, packets.Pubrel, packets.Pubcomp, packets.Suback, packets.Unsuback, packets.Pingresp:
		return true
	}
	return false
}

// deferAcks holds back acknowledgements (isAck) written while the reader
// handles packets that arrived together, or writes them out when on is
// false: with the next packet already buffered, the answers to a burst
// (a QoS 1 publisher's PUBACKs) go out in one system call instead of one
// each. Only the reader calls it, before it handles a packet that has
// others buffered behind it (on) and before it waits for more (off), so
// nothing is held back while it waits. Other packets (CONNACK,
// DISCONNECT, deliveries) are never held back: they are written at once,
// after the acknowledgements held so far.
//
// fleetgate: added; upstream wrote every acknowledgement at once.
func (cl *Client) deferAcks(on bool) {
	if cl.State.deferringAcks == on || cl.Net.Conn == nil {
		return
	}
	cl.State.deferringAcks = on
	cl.Net.wmu.Lock()
	defer cl.Net.wmu.Unlock()
	cl.Net.deferring = on
	if on || cl.Net.acks == nil {
		return
	}
	defer cl.dropAcks()
	if cl.Closed() {
		return
	}
	w, err := cl.Net.Conn.Write(cl.Net.acks.Bytes())
	atomic.AddInt64(&cl.ops.info.BytesSent, int64(w))
	if err != nil {
		cl.ops.log.Debug("failed writing acknowledgements", "error", err, "client", cl.ID)
	}
}

// maxHeldAcks bounds the bytes of acknowledgements held back (about 128
// PUBACKs): a client streaming packets so that the reader never finds its
// buffer empty between two of them must not make them pile up; beyond
// the bound the next one is written at once, with those held.
const maxHeldAcks = 512

// holdAck keeps an encoded acknowledgement for deferAcks, reporting false
// when acknowledgements are not being held back or maxHeldAcks are. The
// caller holds wmu.
func (cl *Client) holdAck(b []byte) bool {
	if !cl.Net.deferring || cl.Net.acks != nil && cl.Net.acks.Len()+len(b) > maxHeldAcks {
		return false
	}
	if cl.Net.acks == nil {
		cl.Net.acks = mempool.GetBuffer()
	}
	cl.Net.acks.Write(b)
	atomic.AddInt64(&cl.ops.info.PacketsSent, 1)
	return true
}

// dropAcks gives the held acknowledgements' buffer back. The caller holds
// wmu.
func (cl *Client) dropAcks() {
	mempool.PutBuffer(cl.Net.acks)
	cl.Net.acks = nil
}

// ParseConnect parses the connect parameters and properties for a client.
func (cl *Client) ParseConnect(lid string, pk packets.Packet) {
	cl.Net.Listener = lid

	cl.Properties.ProtocolVersion = pk.ProtocolVersion
	cl.Properties.Username = pk.Connect.Username
	cl.Properties.Clean = pk.Connect.Clean
	cl.Properties.Props = pk.Properties.Copy(false)

	if cl.Properties.Props.ReceiveMaximum > cl.ops.options.Capabilities.MaximumInflight { // 3.3.4 Non-normative
		cl.Properties.Props.ReceiveMaximum = cl.ops.options.Capabilities.MaximumInflight
	}

	if pk.Connect.Keepalive <= minimumKeepalive {
		cl.ops.log.Warn(
			ErrMinimumKeepalive.Error(),
			"client", cl.ID,
			"keepalive", pk.Connect.Keepalive,
			"recommended", minimumKeepalive,
		)
	}

	cl.State.Keepalive = pk.Connect.Keepalive                                              // [MQTT-3.2.2-22]
	cl.State.Inflight.ResetReceiveQuota(int32(cl.ops.options.Capabilities.ReceiveMaximum)) // server receive max per client
	cl.State.Inflight.ResetSendQuota(int32(cl.Properties.Props.ReceiveMaximum))            // client receive max
	cl.State.TopicAliases.Outbound = NewOutboundTopicAliases(cl.Properties.Props.TopicAliasMaximum)

	cl.ID = pk.Connect.ClientIdentifier
	if cl.ID == "" {
		cl.ID = xid.New().String() // [MQTT-3.1.3-6] [MQTT-3.1.3-7]
		cl.Properties.Props.AssignedClientID = cl.ID
	}

	if pk.Connect.WillFlag {
		cl.Properties.Will = Will{
			Qos:               pk.Connect.WillQos,
			Retain:            pk.Connect.WillRetain,
			Payload:           pk.Connect.WillPayload,
			TopicName:         pk.Connect.WillTopic,
			WillDelayInterval: pk.Connect.WillProperties.WillDelayInterval,
			User:              pk.Connect.WillProperties.User,
		}
		if pk.Properties.SessionExpiryIntervalFlag &&
			pk.Properties.SessionExpiryInterval < pk.Connect.WillProperties.WillDelayInterval {
			cl.Properties.Will.WillDelayInterval = pk.Properties.SessionExpiryInterval
		}
		if pk.Connect.WillFlag {
			cl.Properties.Will.Flag = 1 // atomic for checking
		}
	}
}

// refreshDeadline refreshes the read/write deadline for the net.Conn connection.
//
// fleetgate: upstream moved the deadline before every packet, and moving a
// deadline costs two timer updates (about 2 % of the broker's CPU under a
// publish load). Now it moves at most once a second, and one second
// further out: a silent client is still disconnected no earlier than
// 1.5 x keepalive after its last packet [MQTT-3.1.2-22], and at most a
// second later. Only the goroutine reading the client's packets calls it.
func (cl *Client) refreshDeadline(keepalive uint16) {
	if cl.Net.Conn == nil {
		return
	}
	now := time.Now()
	if cl.State.deadlineSet != 0 && keepalive == cl.State.deadlineKeepalive &&
		(keepalive == 0 || now.UnixNano()-cl.State.deadlineSet < int64(time.Second)) {
		return
	}
	var expiry time.Time // nil time can be used to disable deadline if keepalive = 0
	if keepalive > 0 {
		expiry = now.Add(time.Duration(keepalive+(keepalive/2))*time.Second + time.Second) // [MQTT-3.1.2-22]
	}
	cl.State.deadlineSet, cl.State.deadlineKeepalive = now.UnixNano(), keepalive
	_ = cl.Net.Conn.SetDeadline(expiry)
}

// NextPacketID returns the next available (unused) packet id for the client.
// If no unused packet ids are available, an error is returned and the client
// should be disconnected.
func (cl *Client) NextPacketID() (i uint32, err error) {
	cl.Lock()
	defer cl.Unlock()

	i = atomic.LoadUint32(&cl.State.packetID)
	started := i
	overflowed := false
	for {
		if overflowed && i == started {
			return 0, packets.ErrQuotaExceeded
		}

		if i >= cl.ops.options.Capabilities.maximumPacketID {
			overflowed = true
			i = 0
			continue
		}

		i++

		if _, ok := cl.State.Inflight.Get(uint16(i)); !ok {
			atomic.StoreUint32(&cl.State.packetID, i)
			return i, nil
		}
	}
}

// ResendInflightMessages attempts to resend any pending inflight messages to connected clients.
func (cl *Client) ResendInflightMessages(force bool) error {
	if cl.State.Inflight.Len() == 0 {
		return nil
	}

	for _, tk := range cl.State.Inflight.GetAll(false) {
		if tk.FixedHeader.Type == packets.Publish {
			tk.FixedHeader.Dup = true // [MQTT-3.3.1-1] [MQTT-3.3.1-3]
		}

		cl.ops.hooks.OnQosPublish(cl, tk, tk.Created, 0)
		err := cl.WritePacket(tk)
		if err != nil {
			return err
		}

		if tk.FixedHeader.Type == packets.Puback || tk.FixedHeader.Type == packets.Pubcomp {
			if ok := cl.State.Inflight.Delete(tk.PacketID); ok {
				cl.ops.hooks.OnQosComplete(cl, tk)
				atomic.AddInt64(&cl.ops.info.Inflight, -1)
			}
		}
	}

	return nil
}

// ClearInflights deletes all inflight messages for the client, e.g. for a disconnected user with a clean session.
func (cl *Client) ClearInflights() {
	for _, tk := range cl.State.Inflight.GetAll(false) {
		if ok := cl.State.Inflight.Delete(tk.PacketID); ok {
			cl.ops.hooks.OnQosDropped(cl, tk)
			atomic.AddInt64(&cl.ops.info.Inflight, -1)
		}
	}
}

// ClearExpiredInflights deletes any inflight messages which have expired.
func (cl *Client) ClearExpiredInflights(now, maximumExpiry int64) []uint16 {
	deleted := []uint16{}
	for _, tk := range cl.State.Inflight.GetAll(false) {
		expired := tk.ProtocolVersion == 5 && tk.Expiry > 0 && tk.Expiry < now // [MQTT-3.3.2-5]

		// If the maximum message expiry interval is set (greater than 0), and the message
		// retention period exceeds the maximum expiry, the message will be forcibly removed.
		enforced := maximumExpiry > 0 && now-tk.Created > maximumExpiry

		if expired || enforced {
			if ok := cl.State.Inflight.Delete(tk.PacketID); ok {
				cl.ops.hooks.OnQosDropped(cl, tk)
				atomic.AddInt64(&cl.ops.info.Inflight, -1)
				deleted = append(deleted, tk.PacketID)
			}
		}
	}

	return deleted
}

// Read reads incoming packets from the connected client and transforms them into
// packets to be handled by the packetHandler.
func (cl *Client) Read(packetHandler ReadFn) error {
	var err error
	defer cl.deferAcks(false) // fleetgate: what is held back goes out, if the connection still takes it

	for {
		if cl.Closed() {
			return nil
		}

		// fleetgate: an idle client holds no read buffer (see connReader);
		// this also returns the one CONNECT was read with. Held-back
		// acknowledgements go out before the wait (see deferAcks).
		if cl.Net.bconn.buffered() == 0 {
			cl.deferAcks(false)
		}
		cl.Net.bconn.release(false)
		cl.refreshDeadline(cl.State.Keepalive)
		fh := new(packets.FixedHeader)
		err = cl.ReadFixedHeader(fh)
		if err != nil {
			return err
		}

		err = cl.readAndHandle(fh, packetHandler)
		if err != nil {
			return err
		}
	}
}

// readAndHandle reads the body of the packet whose fixed header is fh and
// processes it.
//
// fleetgate: split out of Read so that Read's frame, where an idle client's
// reader waits for the next fixed header, does not hold the packet (the
// packet and the handler's by-value argument took 1.6 KB of it).
//
//go:noinline
func (cl *Client) readAndHandle(fh *packets.FixedHeader, packetHandler ReadFn) error {
	pk, err := cl.ReadPacket(fh)
	if err != nil {
		return err
	}
	if cl.Net.bconn.buffered() > 0 {
		cl.deferAcks(true) // fleetgate: more packets follow this one
	}

	return packetHandler(cl, pk) // Process inbound packet.
}

// Stop instructs the client to shut down all processing goroutines and disconnect.
func (cl *Client) Stop(err error) {
	cl.State.endOnce.Do(func() {

		if cl.Net.Conn != nil {
			_ = cl.Net.Conn.Close() // omit close error
		}

		if err != nil {
			cl.State.stopCause.Store(err)
		}

		if cl.State.cancelOpen != nil {
			cl.State.cancelOpen()
		}

		atomic.StoreInt64(&cl.State.disconnected, time.Now().Unix())
	})
}

// StopCause returns the reason the client connection was stopped, if any.
func (cl *Client) StopCause() error {
	if cl.State.stopCause.Load() == nil {
		return nil
	}
	return cl.State.stopCause.Load().(error)
}

// StopTime returns the the time the client disconnected in unix time, else zero.
func (cl *Client) StopTime() int64 {
	return atomic.LoadInt64(&cl.State.disconnected)
}

// Closed returns true if client connection is closed.
func (cl *Client) Closed() bool {
	return cl.State.open == nil || cl.State.open.Err() != nil
}

func (cl *Client) IsTakenOver() bool {
	return cl.State.isTakenOver.Load()
}

// ReadFixedHeader reads in the values of the next packet's fixed header.
func (cl *Client) ReadFixedHeader(fh *packets.FixedHeader) error {
	if cl.Net.bconn == nil {
		return ErrConnectionClosed
	}

	b, err := cl.Net.bconn.first() // fleetgate: no buffer held while waiting for it
	if err != nil {
		return err
	}

	err = fh.Decode(b)
	if err != nil {
		return err
	}

	var bu int
	fh.Remaining, bu, err = packets.DecodeLength(cl.Net.bconn)
	if err != nil {
		return err
	}

	if cl.ops.options.Capabilities.MaximumPacketSize > 0 && uint32(fh.Remaining+1) > cl.ops.options.Capabilities.MaximumPacketSize {
		return packets.ErrPacketTooLarge // [MQTT-3.2.2-15]
	}

	atomic.AddInt64(&cl.ops.info.BytesReceived, int64(bu+1))
	return nil
}

// ReadPacket reads the remaining buffer into an MQTT packet.
func (cl *Client) ReadPacket(fh *packets.FixedHeader) (pk packets.Packet, err error) {
	atomic.AddInt64(&cl.ops.info.PacketsReceived, 1)

	pk.ProtocolVersion = cl.Properties.ProtocolVersion // inherit client protocol version for decoding
	pk.FixedHeader = *fh
	p := make([]byte, pk.FixedHeader.Remaining)
	n, err := io.ReadFull(cl.Net.bconn, p)
	if err != nil {
		return pk, err
	}

	atomic.AddInt64(&cl.ops.info.BytesReceived, int64(n))

	// fleetgate: p is made for this packet alone, so it is decoded in place;
	// upstream copied it again first ("otherwise the next packet will
	// change the data of this one"), which only holds for a reused buffer.
	px := p
	switch pk.FixedHeader.Type {
	case packets.Connect:
		err = pk.ConnectDecode(px)
	case packets.Disconnect:
		err = pk.DisconnectDecode(px)
	case packets.Connack:
		err = pk.ConnackDecode(px)
	case packets.Publish:
		err = pk.PublishDecode(px)
		if err == nil {
			atomic.AddInt64(&cl.ops.info.MessagesReceived, 1)
		}
	case packets.Puback:
		err = pk.PubackDecode(px)
	case packets.Pubrec:
		err = pk.PubrecDecode(px)
	case packets.Pubrel:
		err = pk.PubrelDecode(px)
	case packets.Pubcomp:
		err = pk.PubcompDecode(px)
	case packets.Subscribe:
		err = pk.SubscribeDecode(px)
	case packets.Suback:
		err = pk.SubackDecode(px)
	case packets.Unsubscribe:
		err = pk.UnsubscribeDecode(px)
	case packets.Unsuback:
		err = pk.UnsubackDecode(px)
	case packets.Pingreq:
	case packets.Pingresp:
	case packets.Auth:
		err = pk.AuthDecode(px)
	default:
		err = fmt.Errorf("invalid packet type; %v", pk.FixedHeader.Type)
	}

	if err != nil {
		return pk, err
	}

	pk, err = cl.ops.hooks.OnPacketRead(cl, pk)
	return
}

// WritePacket encodes and writes a packet to the client now, from the
// calling goroutine.
//
// fleetgate: deliveries to subscribers are queued instead (enqueue), and
// both paths share encodePacket; writes are serialized by the connection's
// own mutex rather than the client's, which NextPacketID also takes.
func (cl *Client) WritePacket(pk packets.Packet) error {
	if cl.Closed() {
		return ErrConnectionClosed
	}

	if cl.Net.Conn == nil {
		return nil
	}

	buf := mempool.GetBuffer()
	defer mempool.PutBuffer(buf)
	if err := cl.encodePacket(&pk, buf); err != nil {
		return err
	}
	if isAck(pk.FixedHeader.Type) {
		cl.Net.wmu.Lock()
		held := cl.holdAck(buf.Bytes())
		cl.Net.wmu.Unlock()
		if held {
			cl.ops.hooks.OnPacketSent(cl, pk, buf.Bytes())
			return nil
		}
	}
	var msgs int32
	if pk.FixedHeader.Type == packets.Publish {
		msgs = 1
	}
	if err := cl.write(buf.Bytes(), 1, msgs); err != nil {
		return err
	}
	cl.ops.hooks.OnPacketSent(cl, pk, buf.Bytes())
	return nil
}

// encodePacket prepares pk for this client in place (protocol version,
// size limit, expiry, the OnPacketEncode hooks) and encodes it into buf.
// pk is a pointer because a packet is 800 bytes: passing and returning it
// by value cost more than its encoding.
func (cl *Client) encodePacket(pk *packets.Packet, buf *bytes.Buffer) error {
	if pk.Expiry > 0 {
		expiry := pk.Expiry - time.Now().Unix()
		if expiry < 1 {
			expiry = 1
		}
		pk.Properties.MessageExpiryInterval = uint32(expiry) // [MQTT-3.3.2-6]
	}

	pk.ProtocolVersion = cl.Properties.ProtocolVersion
	if pk.Mods.MaxSize == 0 { // NB we use this statement to embed client packet sizes in tests
		pk.Mods.MaxSize = cl.Properties.Props.MaximumPacketSize
	}

	if cl.Properties.Props.RequestProblemInfoFlag && cl.Properties.Props.RequestProblemInfo == 0x0 {
		pk.Mods.DisallowProblemInfo = true // [MQTT-3.1.2-29] strict, no problem info on any packet if set
	}

	if pk.FixedHeader.Type != packets.Connack || cl.Properties.Props.RequestResponseInfo == 0x1 || cl.ops.options.Capabilities.Compatibilities.AlwaysReturnResponseInfo {
		pk.Mods.AllowResponseInfo = true // [MQTT-3.1.2-28] we need to know which properties we can encode
	}

	*pk = cl.ops.hooks.OnPacketEncode(cl, *pk)

	var err error
	switch pk.FixedHeader.Type {
	case packets.Connect:
		err = pk.ConnectEncode(buf)
	case packets.Connack:
		err = pk.ConnackEncode(buf)
	case packets.Publish:
		err = pk.PublishEncode(buf)
	case packets.Puback:
		err = pk.PubackEncode(buf)
	case packets.Pubrec:
		err = pk.PubrecEncode(buf)
	case packets.Pubrel:
		err = pk.PubrelEncode(buf)
	case packets.Pubcomp:
		err = pk.PubcompEncode(buf)
	case packets.Subscribe:
		err = pk.SubscribeEncode(buf)
	case packets.Suback:
		err = pk.SubackEncode(buf)
	case packets.Unsubscribe:
		err = pk.UnsubscribeEncode(buf)
	case packets.Unsuback:
		err = pk.UnsubackEncode(buf)
	case packets.Pingreq:
		err = pk.PingreqEncode(buf)
	case packets.Pingresp:
		err = pk.PingrespEncode(buf)
	case packets.Disconnect:
		err = pk.DisconnectEncode(buf)
	case packets.Auth:
		err = pk.AuthEncode(buf)
	default:
		err = fmt.Errorf("%w: %v", packets.ErrNoValidPacketAvailable, pk.FixedHeader.Type)
	}
	if err != nil {
		return err
	}

	if pk.Mods.MaxSize > 0 && uint32(buf.Len()) > pk.Mods.MaxSize {
		return packets.ErrPacketTooLarge // [MQTT-3.1.2-24] [MQTT-3.1.2-25]
	}
	return nil
}
