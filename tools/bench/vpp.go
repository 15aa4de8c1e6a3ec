package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.fd.io/govpp/adapter/socketclient"
	"go.fd.io/govpp/core"

	"usrsp.dev/contracts"
	"usrsp.dev/libs/vpp"
	"usrsp.dev/tools/cnibench"
	"usrsp.dev/tools/harness"
)

// vppSwitch is the harness's host VPP (USRSP_VPP_BIN).
type vppSwitch struct{}

var _ vswitch = vppSwitch{}

// vppBridgeBase is the first bridge domain id of the bench's networks.
const vppBridgeBase = 10

func (vppSwitch) network(h *harness.Harness, name, port string, i int) (*harness.Network, error) {
	host := map[string]any{"engine": "vpp", "netType": "bridge", "bridge": map[string]any{"bridgeId": vppBridgeBase + i}}
	if port == PortMemif {
		host["iftype"], host["memif"] = "memif", map[string]any{"role": "master", "mode": "ethernet"}
	} else {
		host["iftype"], host["vhost"] = "vhostuser", map[string]any{"mode": "server"}
	}
	return h.Network(name, fmt.Sprintf("10.%d.0.0/20", 80+i*16), host)
}

// limit: VPP has no per-kind port limit (memif ids are per socket, and
// every attachment has a socket of its own).
func (vppSwitch) limit(string) int { return 0 }

// restart kills VPP (SIGKILL, as a crash would: VPP keeps no
// configuration, so the adapter must replay everything) and starts it.
func (vppSwitch) restart(ctx context.Context, h *harness.Harness) error { return h.VPP.Restart(ctx) }

// probes time a vppctl `exec` of a script doing what the adapter does for
// one attachment (create, tag, bridge, up; for memif also the socket
// registration), against `vppctl show version`.
func (vppSwitch) probes(ctx context.Context, h *harness.Harness, port string, n int) (create, noop cnibench.Summary, err error) {
	const bd = 999
	if _, err := h.VPP.CLI(ctx, fmt.Sprintf("create bridge-domain %d", bd)); err != nil {
		return create, noop, err
	}
	defer func() { _, _ = h.VPP.CLI(context.WithoutCancel(ctx), fmt.Sprintf("create bridge-domain %d del", bd)) }()
	var creates, noops []time.Duration
	for i := range n {
		sock := filepath.Join(h.Dir, fmt.Sprintf("probe%d.sock", i))
		var script []string
		var iface, del string
		if port == PortMemif {
			sid := 9000 + i
			iface = fmt.Sprintf("memif%d/0", sid)
			script = []string{fmt.Sprintf("create memif socket id %d filename %s", sid, sock),
				fmt.Sprintf("create interface memif id 0 socket-id %d master", sid)}
			del = fmt.Sprintf("delete interface memif %s\ndelete memif socket id %d", iface, sid)
		} else {
			iface = fmt.Sprintf("VirtualEthernet0/0/%d", 9000+i)
			script = []string{fmt.Sprintf("create vhost-user socket %s server renumber %d", sock, 9000+i)}
			del = "delete vhost-user " + iface
		}
		script = append(script, fmt.Sprintf("set interface tag %s usrsp-bench-probe", iface),
			fmt.Sprintf("set interface l2 bridge %s %d", iface, bd), fmt.Sprintf("set interface state %s up", iface))
		file := filepath.Join(h.Dir, "probe.cli")
		if err := os.WriteFile(file, []byte(strings.Join(script, "\n")+"\n"), 0o644); err != nil {
			return create, noop, err
		}
		start := time.Now()
		out, err := h.VPP.CLI(ctx, "exec "+file)
		if err != nil {
			return create, noop, err
		}
		creates = append(creates, time.Since(start))
		// vppctl exits 0 after a failed CLI command: check what was made.
		if shown, err := h.VPP.CLI(ctx, "show interface "+iface); err != nil || !strings.Contains(shown, iface) || !strings.Contains(shown, " up ") {
			return create, noop, fmt.Errorf("probe %s not created and up: exec said %q, show interface said %q (%v)", iface, out, shown, err)
		}
		start = time.Now()
		if _, err := h.VPP.CLI(ctx, "show version"); err != nil {
			return create, noop, err
		}
		noops = append(noops, time.Since(start))
		if err := os.WriteFile(file, []byte(del+"\n"), 0o644); err != nil {
			return create, noop, err
		}
		if _, err := h.VPP.CLI(ctx, "exec "+file); err != nil {
			return create, noop, err
		}
		_ = os.Remove(sock)
		_ = os.Remove(file)
	}
	return cnibench.Summarize(creates), cnibench.Summarize(noops), nil
}

func (vppSwitch) probeText(port string) string {
	what := "create memif socket + create interface memif (master)"
	if port != PortMemif {
		what = "create vhost-user (server)"
	}
	return "vppctl exec of a script: " + what + ", set interface tag, l2 bridge, state up; vs vppctl show version (exec + CLI round trip)"
}

func (vppSwitch) checker(h *harness.Harness, _, network string) cnibench.Checker {
	return &vppChecker{NATSChecker: cnibench.NATSChecker{Client: contracts.NewClient(h.NC, h.Node(), 5*time.Second),
		Engine: contracts.EngineVPP, Network: network}, apiSock: h.VPP.APISock}
}

// vppChecker is recover's "back" on VPP, a pass at a time: the adapter's
// status is ready (it is connected and its replay is done; a request that
// does not touch VPP) and one sw_interface_dump of the host VPP shows each
// attachment's tagged interface admin up (the adapter sets it up last).
//
// Why not the adapter's check per key, as on OVS: the vpp-adapter's check
// dumps every interface to find one tag, so a pass over 1000 attachments
// is 1000 dumps of 1000 interfaces; measured under load it added ~9 s to
// the recovery (replay done at 21.5 s, every check passed at 30.4 s).
// Check (per key) stays the contracts' check.
type vppChecker struct {
	cnibench.NATSChecker
	apiSock string
}

var _ cnibench.BatchChecker = (*vppChecker)(nil)

func (c *vppChecker) CheckMany(ctx context.Context, keys []contracts.AttachmentKey) ([]contracts.AttachmentKey, error) {
	st, err := c.Client.Status(ctx, contracts.EngineVPP)
	if err != nil {
		return nil, err
	}
	if !st.Ready {
		return nil, fmt.Errorf("vpp-adapter not ready: %s", st.Message)
	}
	up, err := vppTagsUp(ctx, c.apiSock)
	if err != nil {
		return nil, err
	}
	var back []contracts.AttachmentKey
	for _, k := range keys {
		if up[vppTag(k)] {
			back = append(back, k)
		}
	}
	return back, nil
}

// vppTag is the tag the vpp-adapter gives an attachment's interface:
// "usrsp:" + the first 12 hex digits of sha256("<containerID>/<ifName>")
// (services/vpp-adapter/README.md).
func vppTag(k contracts.AttachmentKey) string { return "usrsp:" + k.ShortID() }

// vppTagsUp is the set of tags of the admin-up interfaces of the VPP on
// apiSock, from one sw_interface_dump on a fresh connection (VPP was
// restarted: an old one would be dead).
func vppTagsUp(ctx context.Context, apiSock string) (map[string]bool, error) {
	conn, err := core.Connect(socketclient.NewVppClient(apiSock))
	if err != nil {
		return nil, err
	}
	defer conn.Disconnect()
	ifs, err := vpp.NewClient(conn).InterfacesTagged(ctx, "")
	if err != nil {
		return nil, err
	}
	up := map[string]bool{}
	for _, i := range ifs {
		if i.Tag != "" && i.AdminUp {
			up[i.Tag] = true
		}
	}
	return up, nil
}

func (vppSwitch) logDirs(h *harness.Harness) []string { return []string{h.VPP.Dir} }
