package memif

import (
	"context"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// queue is the state shared by TxQueue and RxQueue: one ring plus the
// private cursors of whichever side of it we are.
type queue struct {
	mu      sync.Mutex // serialises data-path calls against teardown (munmap)
	closed  bool
	r       ring
	regions [][]byte // peer-visible regions; descriptors index into these
	evt     *os.File // interrupt eventfd of this ring
	client  bool     // we are the memif client (we own the buffers)

	// Client only: this ring's buffers are at bufBase + slot*bufSize in region 0.
	bufBase uint32
	bufSize uint32

	cursor uint16 // tx: next slot to fill; rx: next slot to read
	refill uint16 // client rx: next slot to hand back to the server

	dropped atomic.Uint64 // rx packets dropped because of invalid descriptors
	kick    [8]byte       // eventfd increment (1), kept here to avoid allocations
}

// lock locks q, or fails with ErrDisconnected, unlocked, once q is
// closed.
func (q *queue) lock() error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return ErrDisconnected
	}
	return nil
}

func (q *queue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	q.closed = true
	q.evt.Close() // also wakes any Wait blocked on it
}

// buffer returns the shared-memory bytes a descriptor points to, or nil if
// the peer wrote a descriptor outside any region we know.
func (q *queue) buffer(d *desc, length uint32) []byte {
	if int(d.region) >= len(q.regions) {
		return nil
	}
	reg := q.regions[d.region]
	end := uint64(d.offset) + uint64(length)
	if end > uint64(len(reg)) {
		return nil
	}
	return reg[d.offset:end:end]
}

// ownBuffer is the client's fixed buffer for a slot. Computed in uint64 so
// large rings cannot wrap; the layout was checked to fit in uint32 offsets.
func (q *queue) ownOffset(slot uint16) uint32 {
	return uint32(uint64(q.bufBase) + uint64(slot&q.r.mask)*uint64(q.bufSize))
}

// notify signals the consumer unless it has asked to poll (MASK_INT).
func (q *queue) notify() {
	if q.r.flags()&ringFlagMaskInt == 0 {
		_, _ = q.evt.Write(q.kick[:])
	}
}

// TxQueue transmits packets on one ring. Methods are safe for concurrent
// use, but one goroutine per queue is the fast path.
type TxQueue struct{ q queue }

// RxQueue receives packets from one ring.
type RxQueue struct{ q queue }

// WritePacket sends one packet without blocking. It returns ErrRingFull when
// the ring has no room; the caller may retry.
func (t *TxQueue) WritePacket(p []byte) error {
	pkts := [1][]byte{p}
	n, err := t.TxBurst(pkts[:])
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrRingFull
	}
	return nil
}

// TxBurst sends as many packets from pkts as fit, in order, and returns how
// many were sent. It never blocks and does not allocate.
func (t *TxQueue) TxBurst(pkts [][]byte) (int, error) {
	q := &t.q
	if err := q.lock(); err != nil {
		return 0, err
	}
	defer q.mu.Unlock()
	var n int
	var err error
	if q.client {
		n, err = q.txClient(pkts)
	} else {
		n, err = q.txServer(pkts)
	}
	if n > 0 {
		q.notify()
	}
	return n, err
}

// txClient: S2M ring, we produce descriptors (head) and own the buffers.
func (q *queue) txClient(pkts [][]byte) (int, error) {
	head := q.cursor
	free := q.r.size - (head - q.r.tail())
	reg := q.regions[0]
	bs := int(q.bufSize)
	sent := 0
	for _, p := range pkts {
		need := (len(p) + bs - 1) / bs
		if need == 0 {
			need = 1
		}
		if need > int(q.r.size) {
			if sent == 0 {
				return 0, ErrPacketTooLarge
			}
			break
		}
		if need > int(free) {
			break
		}
		for off := 0; ; {
			chunk := min(len(p)-off, bs)
			boff := q.ownOffset(head)
			copy(reg[boff:uint64(boff)+uint64(chunk)], p[off:off+chunk])
			d := q.r.desc(head)
			d.region = 0
			d.offset = boff
			d.length = uint32(chunk)
			d.metadata = 0
			head++
			off += chunk
			if off >= len(p) {
				d.flags = 0
				break
			}
			d.flags = descFlagNext
		}
		free -= uint16(need)
		sent++
	}
	if sent > 0 {
		q.cursor = head
		q.r.setHead(head)
	}
	return sent, nil
}

// txServer: M2S ring, the client posted empty buffers between tail and head;
// we fill them and advance tail.
func (q *queue) txServer(pkts [][]byte) (int, error) {
	tail := q.cursor
	avail := q.r.head() - tail
	sent := 0
	for _, p := range pkts {
		// First pass: do the posted buffers hold the whole packet? Descriptor
		// lengths are the capacities, so nothing is written until it fits.
		need, room := uint16(0), 0
		for room < len(p) || need == 0 {
			if need == avail {
				goto done
			}
			d := q.r.desc(tail + need)
			if q.buffer(d, d.length) == nil {
				return sent, errors.New("memif: peer posted a buffer outside its regions")
			}
			room += int(d.length)
			need++
		}
		for i, off := uint16(0), 0; i < need; i++ {
			d := q.r.desc(tail + i)
			buf := q.buffer(d, d.length)
			c := copy(buf, p[off:])
			off += c
			d.length = uint32(c)
			d.flags = 0
			if i+1 < need {
				d.flags = descFlagNext
			}
		}
		tail += need
		avail -= need
		sent++
	}
done:
	if sent > 0 {
		q.cursor = tail
		q.r.setTail(tail)
	}
	return sent, nil
}

// ReadPacket copies the next packet into buf and returns its length. It
// returns ErrEmpty when nothing is waiting, and ErrShortBuffer (leaving the
// packet in the ring) when buf is too small.
func (r *RxQueue) ReadPacket(buf []byte) (int, error) {
	pkts := [1][]byte{buf}
	n, err := r.RxBurst(pkts[:])
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, ErrEmpty
	}
	return len(pkts[0]), nil
}

// RxBurst receives up to len(pkts) packets without blocking. Each pkts[i] is
// filled up to its capacity and resliced to the packet length; the return
// value is the number of packets received. A packet larger than the capacity
// of its slice stays in the ring; if it is the first one, ErrShortBuffer is
// returned. RxBurst does not allocate.
func (r *RxQueue) RxBurst(pkts [][]byte) (int, error) {
	q := &r.q
	if err := q.lock(); err != nil {
		return 0, err
	}
	defer q.mu.Unlock()
	// Client reads up to the server's tail (M2S); server reads up to the client's head (S2M).
	var end uint16
	if q.client {
		end = q.r.tail()
	} else {
		end = q.r.head()
	}
	cur := q.cursor
	n := 0
	var err error
	for n < len(pkts) && cur != end {
		// Measure the chain first so a too-small buffer leaves the packet queued.
		total, k, bad := 0, uint16(0), false
		for {
			if cur+k == end {
				goto done // chain not fully published yet
			}
			d := q.r.desc(cur + k)
			k++
			if q.buffer(d, d.length) == nil {
				bad = true
			}
			total += int(d.length)
			if d.flags&descFlagNext == 0 {
				break
			}
		}
		if bad {
			q.dropped.Add(1)
			cur += k
			continue
		}
		dst := pkts[n][:cap(pkts[n])]
		if total > len(dst) {
			if n == 0 {
				err = ErrShortBuffer
			}
			break
		}
		off := 0
		for i := uint16(0); i < k; i++ {
			d := q.r.desc(cur + i)
			off += copy(dst[off:], q.buffer(d, d.length))
		}
		pkts[n] = dst[:total]
		n++
		cur += k
	}
done:
	if cur != q.cursor {
		q.cursor = cur
		if !q.client {
			q.r.setTail(cur)
		}
	}
	if q.client {
		q.refillLocked()
	}
	return n, err
}

// refillLocked hands every consumed slot back to the server with an empty
// buffer: the memif client owns all buffers and must post them on its rx
// ring before the server can deliver anything.
func (q *queue) refillLocked() {
	target := q.cursor + q.r.size
	if q.refill == target {
		return
	}
	for s := q.refill; s != target; s++ {
		d := q.r.desc(s)
		d.flags = 0
		d.region = 0
		d.offset = q.ownOffset(s)
		d.length = q.bufSize
		d.metadata = 0
	}
	q.refill = target
	q.r.setHead(target)
}

// pendingLocked reports whether at least one descriptor is waiting.
func (q *queue) pendingLocked() bool {
	if q.client {
		return q.r.tail() != q.cursor
	}
	return q.r.head() != q.cursor
}

// Dropped returns the number of packets discarded because the peer
// published descriptors pointing outside the shared regions.
func (r *RxQueue) Dropped() uint64 { return r.q.dropped.Load() }

// recheckInterval bounds how long Wait sleeps without looking at the ring.
// The memif protocol lets a C peer skip an interrupt when it races with us
// unmasking it (its head store and flags load are not ordered), so an idle
// waiter re-checks now and then instead of trusting interrupts alone.
const recheckInterval = 100 * time.Millisecond

// Wait blocks until the ring has a packet, the connection goes away
// (ErrDisconnected) or ctx ends. While waiting, interrupts are unmasked;
// otherwise the ring stays in polling mode so the peer saves a syscall per
// burst.
func (r *RxQueue) Wait(ctx context.Context) error {
	q := &r.q
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := q.lock(); err != nil {
			return err
		}
		if q.pendingLocked() {
			q.mu.Unlock()
			return nil
		}
		q.r.setFlags(q.r.flags() &^ ringFlagMaskInt)
		if q.pendingLocked() { // produced before the peer saw the unmask
			q.r.setFlags(q.r.flags() | ringFlagMaskInt)
			q.mu.Unlock()
			return nil
		}
		evt := q.evt
		q.mu.Unlock()

		err := waitEvent(ctx, evt)

		q.mu.Lock()
		if !q.closed {
			q.r.setFlags(q.r.flags() | ringFlagMaskInt)
		}
		q.mu.Unlock()
		if err != nil && isClosedErr(err) {
			return ErrDisconnected
		}
	}
}

// waitEvent reads the eventfd until it fires, ctx ends, or recheckInterval passes.
func waitEvent(ctx context.Context, evt *os.File) error {
	deadline := time.Now().Add(recheckInterval)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := evt.SetReadDeadline(deadline); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { _ = evt.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	var b [8]byte
	_, err := evt.Read(b[:])
	return err
}

// WaitAny blocks until one of queues has a packet, its connection goes away
// (ErrDisconnected) or ctx ends. Peers such as OVS-DPDK transmit on a queue
// per thread, so a receiver of several queues must not watch only one.
func WaitAny(ctx context.Context, queues ...*RxQueue) error {
	switch len(queues) {
	case 0:
		<-ctx.Done()
		return ctx.Err()
	case 1:
		return queues[0].Wait(ctx)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, len(queues))
	for _, q := range queues {
		go func() { done <- q.Wait(ctx) }()
	}
	err := <-done
	cancel()
	for range len(queues) - 1 { // the others return once ctx is cancelled
		<-done
	}
	return err
}
