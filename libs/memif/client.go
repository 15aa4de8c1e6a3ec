package memif

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"
)

// layout is the client's plan for region 0: all rings first (S2M then M2S),
// then every ring's buffers, disjoint: ring k owns buffers
// [k*ringSize, (k+1)*ringSize).
type layout struct {
	numS2M, numM2S int
	log2           uint8
	bufSize        uint32
	bufStart       uint64
	size           uint64
}

func planLayout(numS2M, numM2S int, log2 uint8, bufSize uint32) (layout, error) {
	l := layout{numS2M: numS2M, numM2S: numM2S, log2: log2, bufSize: bufSize}
	rings := uint64(numS2M + numM2S)
	l.bufStart = alignUp(rings*ringBytes(log2), 4096)
	l.size = l.bufStart + rings*(uint64(1)<<log2)*uint64(bufSize)
	if l.size > maxRegionSize {
		return l, fmt.Errorf("memif: %d rings of %d buffers of %d bytes need %d bytes of shared memory, more than the 4 GiB a memif region can address",
			rings, 1<<log2, bufSize, l.size)
	}
	return l, nil
}

func alignUp(v, a uint64) uint64 { return (v + a - 1) &^ (a - 1) }

// ringOffset of ring k (S2M rings are 0..numS2M-1, M2S follow).
func (l layout) ringOffset(k int) uint64 { return uint64(k) * ringBytes(l.log2) }

func (l layout) bufBase(k int) uint64 {
	return l.bufStart + uint64(k)*(uint64(1)<<l.log2)*uint64(l.bufSize)
}

// clientHandshake dials the server and performs the memif client side of the
// handshake: HELLO in; INIT, ADD_REGION, ADD_RING..., CONNECT out, each
// acknowledged one at a time (peers such as DPDK answer in lock-step).
func clientHandshake(ctx context.Context, cfg Config) (_ *conn, err error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unixpacket", cfg.SocketPath)
	if err != nil {
		return nil, fmt.Errorf("memif: connecting to %s: %w", cfg.SocketPath, err)
	}
	sock := nc.(*net.UnixConn)
	if dl, ok := ctx.Deadline(); ok {
		_ = sock.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = sock.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	c := newConn(sock)
	var evts []*os.File // eventfds not yet owned by a queue
	defer func() {
		if err != nil {
			closeFiles(evts)
			c.teardown(err, false)
			if ctx.Err() != nil {
				err = fmt.Errorf("memif: handshake with %s: %w (%w)", cfg.SocketPath, ctx.Err(), err)
			}
		}
	}()

	hello, _, err := expect[helloMsg](sock)
	if err != nil {
		return nil, fmt.Errorf("memif: waiting for HELLO: %w", err)
	}
	if hello.MinVersion > version || hello.MaxVersion < version {
		refuse(sock, "Incompatible memif version")
		return nil, fmt.Errorf("memif: server %q speaks versions %#x..%#x, we need %#x",
			hello.Name, hello.MinVersion, hello.MaxVersion, version)
	}
	// Like DPDK and libmemif, fit our request into what the server supports.
	numS2M := min(cfg.NumQueuePairs, int(hello.MaxS2MRing)+1)
	numM2S := min(cfg.NumQueuePairs, int(hello.MaxM2SRing)+1)
	log2 := min(cfg.Log2RingSize, hello.MaxLog2RingSize)
	if log2 == 0 {
		refuse(sock, "Invalid ring size")
		return nil, errors.New("memif: server announced a maximum ring size of 1")
	}
	l, err := planLayout(numS2M, numM2S, log2, cfg.BufferSize)
	if err != nil {
		return nil, err
	}

	memfd, mem, err := newMemfd("memif:"+cfg.Name, l.size)
	if err != nil {
		return nil, err
	}
	c.memfd = memfd
	c.regions = [][]byte{mem}

	// Rings: S2M descriptors point at our tx buffers; M2S rings start empty
	// and in polling mode. Buffers for M2S are posted after CONNECTED because
	// peers (DPDK) reset head/tail when they process CONNECT/CONNECTED.
	total := numS2M + numM2S
	for k := 0; k < total; k++ {
		r := newRing(mem, uint32(l.ringOffset(k)), log2)
		r.init()
		if k >= numS2M {
			r.setFlags(ringFlagMaskInt)
		}
		for s := uint16(0); s < r.size; s++ {
			dd := r.desc(s)
			*dd = desc{offset: uint32(l.bufBase(k) + uint64(s)*uint64(l.bufSize)), length: l.bufSize}
		}
		e, err := newEventfd()
		if err != nil {
			return nil, err
		}
		evts = append(evts, e)
	}

	if err = sendMsg(sock, initMsg{Version: version, ID: cfg.ID, Mode: cfg.Mode, Secret: cfg.Secret, Name: cfg.Name}, -1); err != nil {
		return nil, err
	}
	if err = expectAck(sock, "INIT"); err != nil {
		return nil, err
	}
	if err = sendMsg(sock, addRegionMsg{Index: 0, Size: l.size}, memfd); err != nil {
		return nil, err
	}
	if err = expectAck(sock, "ADD_REGION"); err != nil {
		return nil, err
	}
	for k := 0; k < total; k++ {
		m := addRingMsg{Index: uint16(k), Offset: uint32(l.ringOffset(k)), Log2RingSize: log2}
		if k < numS2M {
			m.Flags = addRingFlagS2M
		} else {
			m.Index = uint16(k - numS2M)
		}
		fd, err := rawFd(evts[k])
		if err != nil {
			return nil, err
		}
		if err = sendMsg(sock, m, fd); err != nil {
			return nil, err
		}
		if err = expectAck(sock, "ADD_RING"); err != nil {
			return nil, err
		}
	}
	if err = sendMsg(sock, connectMsg{Name: cfg.Name}, -1); err != nil {
		return nil, err
	}
	connected, _, err := expect[connectedMsg](sock)
	if err != nil {
		return nil, fmt.Errorf("memif: waiting for CONNECTED: %w", err)
	}
	c.peerName = connected.Name
	_ = sock.SetDeadline(time.Time{})

	for k := 0; k < total; k++ {
		setup := func(q *queue) {
			q.r = newRing(mem, uint32(l.ringOffset(k)), log2)
			q.regions = c.regions
			q.evt = evts[k]
			q.client = true
			q.bufBase = uint32(l.bufBase(k))
			q.bufSize = l.bufSize
			q.kick[0] = 1
		}
		if k < numS2M {
			tq := &TxQueue{}
			setup(&tq.q)
			tq.q.cursor = tq.q.r.head()
			c.tx = append(c.tx, tq)
			continue
		}
		rq := &RxQueue{}
		setup(&rq.q)
		rq.q.cursor = rq.q.r.tail()
		rq.q.refill = rq.q.r.head()
		rq.q.refillLocked() // post every buffer to the server; not shared yet, no lock needed
		c.rx = append(c.rx, rq)
	}
	evts = nil
	return c, nil
}

func expectAck(s *net.UnixConn, what string) error {
	if _, _, err := expect[ackMsg](s); err != nil {
		return fmt.Errorf("memif: server rejected %s: %w", what, err)
	}
	return nil
}
