package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"usrsp.dev/contracts"
	"usrsp.dev/tools/cnibench"
	"usrsp.dev/tools/harness"
)

// attachTimes collects the durations of the adapter's "attached" events
// of one network while started: the adapter's own attach time, from
// request to port ready, as it measures it.
type attachTimes struct {
	sub *nats.Subscription
	nc  *nats.Conn

	mu      sync.Mutex
	network string
	ds      []time.Duration
}

func collectAttachTimes(nc *nats.Conn, node string, engine contracts.Engine) (*attachTimes, error) {
	a := &attachTimes{nc: nc}
	sub, err := nc.Subscribe(contracts.EventSubject(node, engine, contracts.EventAttached), func(m *nats.Msg) {
		ev, err := contracts.DecodeEvent(m.Data)
		if err != nil || ev.Duration <= 0 {
			return
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		// An event without a network (the vpp-adapter's did not name it)
		// counts too: one network is measured at a time.
		if a.network != "" && (ev.Network == a.network || ev.Network == "") {
			a.ds = append(a.ds, ev.Duration)
		}
	})
	a.sub = sub
	return a, err
}

// Start collects the events of network from now on.
func (a *attachTimes) Start(network string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.network, a.ds = network, nil
}

// Stop waits until the events published so far have arrived (a flush
// round trip) and summarizes them.
func (a *attachTimes) Stop() cnibench.Summary {
	_ = a.nc.FlushTimeout(5 * time.Second)
	a.mu.Lock()
	defer a.mu.Unlock()
	s := cnibench.Summarize(a.ds)
	a.network, a.ds = "", nil
	return s
}

func (a *attachTimes) Close() error { return a.sub.Unsubscribe() }

// Replays are the adapter's "reconciled" events after recover's restart.
// Times are from the moment the restart was asked for (the start of
// recover's restart command, give or take an exec).
type Replays struct {
	// Summaries are the events that name no attachment: one per replay
	// (reconnect), with the adapter's own replay duration.
	Summaries []Replay `json:"summaries,omitempty"`
	// Attachments counts the events naming one attachment (the
	// vpp-adapter's "re-created …"), LastAttachmentAtMs when the last came.
	Attachments        int     `json:"attachments,omitempty"`
	LastAttachmentAtMs float64 `json:"lastAttachmentAtMs,omitempty"`
}

// Replay is one replay's summary event.
type Replay struct {
	AtMs       float64 `json:"atMs"`       // when the event arrived
	DurationMs float64 `json:"durationMs"` // the adapter's own replay time (the event's duration)
	Message    string  `json:"message"`
}

// reconciledEvents records the adapter's "reconciled" events after the
// last restart: they split recover's time into the vswitch's restart,
// the adapter noticing it, and the replay itself.
type reconciledEvents struct {
	sub *nats.Subscription
	nc  *nats.Conn

	mu    sync.Mutex
	since time.Time // zero: not recording
	seen  Replays
}

func collectReconciled(nc *nats.Conn, node string, engine contracts.Engine) (*reconciledEvents, error) {
	r := &reconciledEvents{nc: nc}
	sub, err := nc.Subscribe(contracts.EventSubject(node, engine, contracts.EventReconciled), func(m *nats.Msg) {
		at := time.Now()
		ev, err := contracts.DecodeEvent(m.Data)
		if err != nil {
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.since.IsZero() {
			return
		}
		if ev.Key != nil {
			r.seen.Attachments++
			r.seen.LastAttachmentAtMs = msSince(r.since, at)
			return
		}
		r.seen.Summaries = append(r.seen.Summaries, Replay{AtMs: msSince(r.since, at), DurationMs: float64(ev.Duration) / 1e6, Message: ev.Message})
	})
	r.sub = sub
	return r, err
}

// restarting starts recording, now.
func (r *reconciledEvents) restarting() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.since, r.seen = time.Now(), Replays{}
}

// take waits until the events published so far have arrived and returns
// those since restarting; recording stops.
func (r *reconciledEvents) take() Replays {
	_ = r.nc.FlushTimeout(5 * time.Second)
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := r.seen
	r.since, r.seen = time.Time{}, Replays{}
	return seen
}

func (r *reconciledEvents) Close() error { return r.sub.Unsubscribe() }

func msSince(start, t time.Time) float64 { return float64(t.Sub(start)) / 1e6 }

// replayText is a progress line's view of replays.
func replayText(rs Replays) string {
	if len(rs.Summaries) == 0 && rs.Attachments == 0 {
		return "none seen"
	}
	var parts []string
	for _, r := range rs.Summaries {
		parts = append(parts, fmt.Sprintf("replay done at %.2f s, took %.2f s (%s)", r.AtMs/1000, r.DurationMs/1000, r.Message))
	}
	if rs.Attachments > 0 {
		parts = append(parts, fmt.Sprintf("%d per-attachment events, the last at %.2f s", rs.Attachments, rs.LastAttachmentAtMs/1000))
	}
	return strings.Join(parts, "; ")
}

// vsctlProbes times, n times on a bridge of their own, `ovs-vsctl
// add-port` of the port kind (it waits until ovs-vswitchd applied the
// change) and an `ovs-vsctl set` that vswitchd has nothing to do for.
// The difference estimates what the vswitch itself spends on one port.
func vsctlProbes(ctx context.Context, h *harness.Harness, port string, n int) (addPort, noop cnibench.Summary, err error) {
	const br = "br-probe"
	if _, err := h.OVS.Vsctl(ctx, "add-br", br, "--", "set", "Bridge", br, "datapath_type=netdev"); err != nil {
		return addPort, noop, err
	}
	defer func() { _, _ = h.OVS.Vsctl(context.WithoutCancel(ctx), "--if-exists", "del-br", br) }()
	var adds, noops []time.Duration
	for i := range n {
		name := fmt.Sprintf("probe%d", i)
		sock := filepath.Join(h.Dir, name+".sock")
		args := []string{"add-port", br, name, "--", "set", "Interface", name}
		if port == PortMemif {
			// The adapter's memif port: DPDK net_memif server, n_rxq = PMDs + 1.
			args = append(args, "type=dpdk", "options:n_rxq=2",
				fmt.Sprintf("options:dpdk-devargs=net_memif%d,role=server,id=0,socket=%s,socket-abstract=no", 9000+i, sock))
		} else {
			args = append(args, "type=dpdkvhostuserclient", "options:vhost-server-path="+sock)
		}
		start := time.Now()
		if _, err := h.OVS.Vsctl(ctx, args...); err != nil {
			return addPort, noop, err
		}
		adds = append(adds, time.Since(start))
		if e, err := h.OVS.Vsctl(ctx, "get", "Interface", name, "error"); err != nil || (e != "[]" && e != "") {
			return addPort, noop, fmt.Errorf("probe port %s: error %s %v", name, e, err)
		}
		start = time.Now()
		if _, err := h.OVS.Vsctl(ctx, "set", "Open_vSwitch", ".", "external_ids:usrsp-bench-noop="+strconv.Itoa(i)); err != nil {
			return addPort, noop, err
		}
		noops = append(noops, time.Since(start))
		if _, err := h.OVS.Vsctl(ctx, "del-port", br, name); err != nil {
			return addPort, noop, err
		}
		_ = os.Remove(sock)
	}
	return cnibench.Summarize(adds), cnibench.Summarize(noops), nil
}

// keepLogs copies the harness's logs, the vswitch's and the adapter's
// /metrics into dir before teardown removes them.
func keepLogs(h *harness.Harness, vs vswitch, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if h.Adapter != nil {
		if resp, err := http.Get("http://" + h.Adapter.MetricsAddr + "/metrics"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			_ = os.WriteFile(filepath.Join(dir, "adapter.metrics"), b, 0o644)
		}
	}
	for _, src := range append([]string{h.LogDir()}, vs.logDirs(h)...) {
		if out, err := exec.Command("cp", "-r", src+"/.", dir).CombinedOutput(); err != nil {
			return fmt.Errorf("cp %s: %v: %s", src, err, out)
		}
	}
	return nil
}

// memifChecker is cnibench.NATSChecker with one workaround: the
// ovs-adapter's List reports a memif interface as made (queues = PMD
// threads + 1) while its Check compares against the interface as
// requested, so the listed one never checks out. It sends the queues
// cni-entry requests (the config sets none: its default, 1). Reported to
// the lead; drop this once List and Check agree.
type memifChecker struct {
	cnibench.NATSChecker
	requestedQueues int
	expected        map[contracts.AttachmentKey]contracts.HostInterface
}

var _ cnibench.Checker = (*memifChecker)(nil)

func (c *memifChecker) Expect(ctx context.Context, keys []contracts.AttachmentKey) error {
	list, err := c.Client.List(ctx, c.Engine, &contracts.ListRequest{Network: c.Network})
	if err != nil {
		return err
	}
	c.expected = map[contracts.AttachmentKey]contracts.HostInterface{}
	for _, a := range list.Attachments {
		iface := a.Interface
		if iface.Memif != nil {
			m := *iface.Memif
			m.Queues = c.requestedQueues
			iface.Memif = &m
		}
		c.expected[a.Key] = iface
	}
	for _, k := range keys {
		if _, ok := c.expected[k]; !ok {
			return fmt.Errorf("attachment %s is not in the adapter's list of network %s before the restart", k, c.Network)
		}
	}
	return nil
}

func (c *memifChecker) Check(ctx context.Context, key contracts.AttachmentKey) error {
	_, err := c.Client.Check(ctx, c.Engine, &contracts.CheckRequest{Key: key, Network: c.Network, Interface: c.expected[key]})
	return err
}
