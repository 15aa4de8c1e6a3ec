package probe

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"
)

// PingOptions are ping's -c, -i, -W and -s.
type PingOptions struct {
	Count    int           // echo requests to send
	Interval time.Duration // between sends
	Timeout  time.Duration // wait for each reply, and for ARP resolution
	Size     int           // ICMP payload bytes
}

// Reply is one echo reply.
type Reply struct {
	Seq   int           `json:"seq"`
	From  netip.Addr    `json:"from"`
	Bytes int           `json:"bytes"`
	TTL   uint8         `json:"ttl"`
	RTT   time.Duration `json:"rttNs"`
}

// Summary is ping's closing statistics.
type Summary struct {
	Dst         netip.Addr    `json:"dst"`
	Transmitted int           `json:"transmitted"`
	Received    int           `json:"received"`
	LossPercent float64       `json:"lossPercent"`
	Min         time.Duration `json:"minNs"`
	Avg         time.Duration `json:"avgNs"`
	Max         time.Duration `json:"maxNs"`
	Replies     []Reply       `json:"replies"`
}

// ErrNoReplies is returned by Ping when nothing came back.
var ErrNoReplies = errors.New("no echo replies")

// Ping resolves dst's next hop by ARP, sends opts.Count echo requests one
// after the other (each waits up to opts.Timeout for its reply, then the
// next goes out opts.Interval after the previous one), and reports each
// reply to onReply. The error is ErrNoReplies when none came back.
func (e *Endpoint) Ping(ctx context.Context, dst netip.Addr, opts PingOptions, onReply func(Reply)) (Summary, error) {
	s := Summary{Dst: dst}
	if opts.Count < 1 || opts.Timeout <= 0 || opts.Interval < 0 || opts.Size < 0 || opts.Size > 1400 {
		return s, fmt.Errorf("probe: ping options %+v: want count >= 1, timeout > 0, interval >= 0, size 0..1400", opts)
	}
	hop, err := e.NextHop(dst)
	if err != nil {
		return s, err
	}
	rctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	mac, err := e.Resolve(rctx, hop, min(opts.Timeout/4+time.Millisecond, time.Second))
	cancel()
	if err != nil {
		return s, err
	}
	id := uint16(rand.Uint32())
	payload := make([]byte, opts.Size)
	for i := range payload {
		payload[i] = byte(i)
	}
	for seq := 1; seq <= opts.Count; seq++ {
		sent := time.Now()
		r, ok, err := e.echoOnce(ctx, mac, dst, id, uint16(seq), payload, opts.Timeout)
		if err != nil {
			return s.finish(), err
		}
		s.Transmitted++
		if ok {
			r.Seq = seq
			s.Replies = append(s.Replies, r)
			if onReply != nil {
				onReply(r)
			}
		}
		if seq == opts.Count {
			break
		}
		if err := sleepUntil(ctx, sent.Add(opts.Interval)); err != nil {
			return s.finish(), err
		}
	}
	s = s.finish()
	if s.Received == 0 {
		return s, ErrNoReplies
	}
	return s, nil
}

// echoOnce sends one request and waits for its reply; ok false on timeout.
func (e *Endpoint) echoOnce(ctx context.Context, mac []byte, dst netip.Addr, id, seq uint16, payload []byte, timeout time.Duration) (Reply, bool, error) {
	key := uint32(id)<<16 | uint32(seq)
	ch := make(chan echoReply, 1)
	e.mu.Lock()
	e.pending[key] = ch
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.pending, key)
		e.mu.Unlock()
	}()
	sent := time.Now()
	err := e.port.WriteFrame(echoFrame(mac, e.cfg.MAC, echo{Type: icmpEchoRequest, ID: id, Seq: seq,
		Src: e.cfg.Addr.Addr(), Dst: dst, Payload: payload}))
	if err != nil {
		return Reply{}, false, fmt.Errorf("probe: send echo request %d to %s: %w", seq, dst, err)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case r := <-ch:
		return Reply{From: r.from, Bytes: r.bytes, TTL: r.ttl, RTT: time.Since(sent)}, true, nil
	case <-t.C:
		return Reply{}, false, nil
	case <-ctx.Done():
		return Reply{}, false, ctx.Err()
	}
}

func (s Summary) finish() Summary {
	s.Received = len(s.Replies)
	if s.Transmitted > 0 {
		s.LossPercent = 100 * float64(s.Transmitted-s.Received) / float64(s.Transmitted)
	}
	var total time.Duration
	for i, r := range s.Replies {
		if i == 0 || r.RTT < s.Min {
			s.Min = r.RTT
		}
		s.Max = max(s.Max, r.RTT)
		total += r.RTT
	}
	if s.Received > 0 {
		s.Avg = total / time.Duration(s.Received)
	}
	return s
}

func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
