package harness

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Traffic is what one txonly → rxonly run counted, end to end.
type Traffic struct {
	SenderPort, ReceiverPort string       // OVS interfaces
	Sender, Receiver         TestpmdStats // testpmd's final statistics
	SenderOVS, ReceiverOVS   PortStats    // OVS counters during the run
	Window                   time.Duration
	// Steps is how long each step took, for people chasing slowness.
	Steps []string
}

// String is a one-line summary for people.
func (t Traffic) String() string {
	return fmt.Sprintf("testpmd A sent %d → OVS %s received %d → OVS %s sent %d (dropped %d) → testpmd B received %d",
		t.Sender.TXPackets, t.SenderPort, t.SenderOVS.RXPackets, t.ReceiverPort, t.ReceiverOVS.TXPackets,
		t.ReceiverOVS.TXDropped, t.Receiver.RXPackets)
}

// RunTraffic runs dpdk-testpmd in both pods, with the --vdev arguments
// from pod-consumer dpdk-args: rxonly in rx, txonly in tx for window once
// both links are up. It stops the sender's forwarding first, waits until
// OVS has taken every packet it sent and the receiver has counted every
// packet OVS delivered, then stops the receiver, so the counters can be
// compared exactly. ifName is the pods' interface.
func (h *Harness) RunTraffic(ctx context.Context, tx, rx *Pod, ifName string, window time.Duration) (Traffic, error) {
	return h.runTraffic(ctx, tx, rx, ifName, window, true)
}

// RunTrafficAppCounters is RunTraffic without OVS's counters (SenderOVS
// and ReceiverOVS stay zero), for ports where OVS has none: Debian's OVS
// 3.1 reads "?" for a dpdkvhostuser (server mode) port also while it is
// connected and forwarding. After the sender stops it waits (at most 5s)
// until the receiver has counted as many packets as were sent; fewer mean
// OVS dropped some, which the caller sees in the counters.
func (h *Harness) RunTrafficAppCounters(ctx context.Context, tx, rx *Pod, ifName string, window time.Duration) (Traffic, error) {
	return h.runTraffic(ctx, tx, rx, ifName, window, false)
}

// runTraffic is RunTraffic; ovs: with OVS's counters.
func (h *Harness) runTraffic(ctx context.Context, tx, rx *Pod, ifName string, window time.Duration, ovs bool) (res Traffic, err error) {
	res.Window = window
	last := time.Now()
	step := func(name string) {
		res.Steps = append(res.Steps, fmt.Sprintf("%s %s", name, since(last)))
		last = time.Now()
	}
	if res.SenderPort, err = h.PortOf(ctx, tx.ContainerID, ifName); err != nil {
		return res, err
	}
	if res.ReceiverPort, err = h.PortOf(ctx, rx.ContainerID, ifName); err != nil {
		return res, err
	}
	if res.SenderPort == "" || res.ReceiverPort == "" {
		return res, fmt.Errorf("no OVS port for %s of pod %s or %s", ifName, tx.Name, rx.Name)
	}
	// Both start at once: EAL init takes about a second each.
	var receiver, sender *Testpmd
	var rxErr, txErr error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); receiver, rxErr = rx.StartTestpmd(ctx, "rxonly") }()
	go func() { defer wg.Done(); sender, txErr = tx.StartTestpmd(ctx, "txonly") }()
	wg.Wait()
	if receiver != nil {
		defer func() { _ = receiver.Quit() }()
	}
	if sender != nil {
		defer func() { _ = sender.Quit() }()
	}
	if err := errors.Join(rxErr, txErr); err != nil {
		return res, err
	}
	step("testpmds started")
	defer func() { // both outputs explain a failure
		if err != nil {
			err = fmt.Errorf("%w\n--- testpmd in %s (tx):\n%s\n--- testpmd in %s (rx):\n%s", err,
				tx.Name, lastLines(sender.Output(), 25), rx.Name, lastLines(receiver.Output(), 25))
		}
	}()
	// The pods' view of the link: OVS notices a DPDK (memif) port's link
	// only in its 5 s watchdog.
	for _, t := range []*Testpmd{sender, receiver} {
		if err := t.AwaitLinkUp(ctx); err != nil {
			return res, err
		}
	}
	step("links up")
	// Counters of connected ports, before any packet moved.
	var txBefore, rxBefore PortStats
	if ovs {
		if txBefore, rxBefore, err = h.portStatsOf(ctx, res); err != nil {
			return res, err
		}
	}
	rxAppBefore, err := receiver.RXPackets(ctx)
	if err != nil {
		return res, err
	}
	if err := receiver.Start(ctx); err != nil {
		return res, err
	}
	if err := sender.Start(ctx); err != nil {
		return res, err
	}
	select { // the measured window: traffic flows meanwhile
	case <-time.After(window):
	case <-ctx.Done():
		return res, ctx.Err()
	}
	step("forwarding")
	if res.Sender, err = sender.StopForwarding(ctx); err != nil {
		return res, err
	}
	if !ovs {
		// Bounded, and not an error: what did not arrive shows in the counters.
		_ = poll(ctx, func() (bool, error) {
			n, err := receiver.RXPackets(ctx)
			return n-rxAppBefore == res.Sender.TXPackets, err
		})
		step("drained")
		res.Receiver, err = receiver.StopForwarding(ctx)
		return res, err
	}
	// The sender's port stays open, so OVS's PMD drains its rings; wait
	// until it has taken every packet, and the receiver every packet OVS
	// delivered, before stopping the receiver.
	var rxOVS PortStats
	if err := poll(ctx, func() (bool, error) {
		s, err := h.PortStats(ctx, res.SenderPort)
		return s.RXPackets-txBefore.RXPackets == res.Sender.TXPackets, err
	}); err != nil {
		return res, fmt.Errorf("OVS did not receive the %d packets the sender sent: %w", res.Sender.TXPackets, err)
	}
	if err := poll(ctx, func() (bool, error) {
		if rxOVS, err = h.PortStats(ctx, res.ReceiverPort); err != nil {
			return false, err
		}
		n, err := receiver.RXPackets(ctx)
		return n-rxAppBefore == rxOVS.TXPackets-rxBefore.TXPackets, err
	}); err != nil {
		return res, fmt.Errorf("receiver did not count what OVS delivered to it: %w", err)
	}
	step("drained")
	if res.Receiver, err = receiver.StopForwarding(ctx); err != nil {
		return res, err
	}
	txAfter, rxAfter, err := h.portStatsOf(ctx, res)
	if err != nil {
		return res, err
	}
	res.SenderOVS = txAfter.minus(txBefore)
	res.ReceiverOVS = rxAfter.minus(rxBefore)
	return res, nil
}

// portStatsOf reads the OVS counters of the sender's and the receiver's
// ports.
func (h *Harness) portStatsOf(ctx context.Context, res Traffic) (tx, rx PortStats, err error) {
	if tx, err = h.PortStats(ctx, res.SenderPort); err != nil {
		return tx, rx, err
	}
	rx, err = h.PortStats(ctx, res.ReceiverPort)
	return tx, rx, err
}

func (s PortStats) minus(o PortStats) PortStats {
	return PortStats{RXPackets: s.RXPackets - o.RXPackets, RXDropped: s.RXDropped - o.RXDropped,
		TXPackets: s.TXPackets - o.TXPackets, TXDropped: s.TXDropped - o.TXDropped}
}

// poll checks cond every 20ms until it holds, for at most 5s: counters have
// no change notification.
func poll(ctx context.Context, cond func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		ok, err := cond()
		if ok && err == nil {
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), last)
		case <-tick.C:
		}
	}
}
