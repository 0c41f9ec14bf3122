// SPDX-License-Identifier: MIT

//go:build !unix

package mqtt

import (
	"errors"
	"net"
)

// LazyTCP is not available on this platform: NewLazyTCP returns nil and
// readers wait for a packet's first byte in a one-byte array.
type LazyTCP struct{}

// NewLazyTCP returns nil here.
func NewLazyTCP(net.Conn) *LazyTCP { return nil }

// ReadLazy is never reached (NewLazyTCP returns nil).
func (*LazyTCP) ReadLazy(func() []byte, func()) ([]byte, error) { return nil, errors.ErrUnsupported }
