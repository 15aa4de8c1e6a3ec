package probe

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"strings"
	"time"

	"usrsp.dev/contracts"
	"usrsp.dev/libs/memif"
)

// MemifPort is a Port on a libs/memif interface. It reads every receive
// queue (the peer may spread frames over them) and sends on queue 0.
type MemifPort struct {
	Ifc *memif.Interface
}

var _ Port = MemifPort{}

// ReadFrame implements Port. While the interface is down it waits for it to
// come (back) up.
func (p MemifPort) ReadFrame(ctx context.Context, buf []byte) (int, error) {
	for {
		n := p.Ifc.NumQueuePairs()
		if n == 0 {
			if err := p.Ifc.WaitUp(ctx); err != nil {
				return 0, err
			}
			continue
		}
		rxs := make([]*memif.RxQueue, 0, n)
		for i := range n {
			rx, err := p.Ifc.RxQueue(i)
			if err != nil {
				break // reconnected meanwhile: look again
			}
			m, err := rx.ReadPacket(buf)
			switch {
			case err == nil:
				return m, nil
			case errors.Is(err, memif.ErrShortBuffer):
				return 0, fmt.Errorf("memif queue %d: frame larger than %d bytes: %w", i, len(buf), err)
			}
			rxs = append(rxs, rx)
		}
		if len(rxs) < n {
			continue
		}
		err := memif.WaitAny(ctx, rxs...)
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if errors.Is(err, memif.ErrClosed) {
			return 0, err
		}
	}
}

// txRetries bounds how long WriteFrame waits for room in a full ring.
const (
	txRetries    = 100
	txRetryPause = time.Millisecond
)

// WriteFrame implements Port.
func (p MemifPort) WriteFrame(b []byte) error {
	for range txRetries {
		tx, err := p.Ifc.TxQueue(0)
		if err != nil {
			return err
		}
		err = tx.WritePacket(b)
		if !errors.Is(err, memif.ErrRingFull) {
			return err
		}
		time.Sleep(txRetryPause)
	}
	return memif.ErrRingFull
}

// MemifConfig is the libs/memif configuration of the pod's end of a memif
// described by the pod data: master is the memif server, slave the client.
func MemifConfig(c contracts.ContainerInterface, name string) (memif.Config, error) {
	m := c.Memif
	if c.IfType != contracts.IfTypeMemif || m == nil {
		return memif.Config{}, contracts.Errorf(contracts.CodeInvalidConfig, "interface is %s, the probe needs a memif", c.IfType)
	}
	if m.Mode != contracts.MemifModeEthernet {
		return memif.Config{}, contracts.Errorf(contracts.CodeUnsupportedField, "interface.memif.mode %q: the probe speaks Ethernet only", m.Mode)
	}
	if strings.HasPrefix(c.SocketPath, "@") {
		return memif.Config{}, contracts.Errorf(contracts.CodeUnsupportedField,
			"interface.socketPath %q is an abstract socket, which libs/memif does not support", c.SocketPath)
	}
	cfg := memif.Config{Role: memif.RoleClient, SocketPath: c.SocketPath, ID: m.ID, Secret: m.Secret, Name: name,
		NumQueuePairs: max(m.Queues, 1), BufferSize: uint32(max(m.BufferSize, 0)), Mode: memif.ModeEthernet}
	if m.Role == contracts.MemifRoleMaster {
		cfg.Role = memif.RoleServer
	}
	if m.RingSize > 0 {
		if m.RingSize&(m.RingSize-1) != 0 {
			return memif.Config{}, contracts.Errorf(contracts.CodeInvalidConfig, "interface.memif.ringSize %d is not a power of two", m.RingSize)
		}
		cfg.Log2RingSize = uint8(bits.TrailingZeros(uint(m.RingSize)))
	}
	return cfg, nil
}
