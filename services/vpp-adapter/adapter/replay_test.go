package adapter_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	govppadapter "go.fd.io/govpp/adapter"

	"usrsp.dev/contracts"
	"usrsp.dev/libs/vpp"
	"usrsp.dev/libs/vpp/vpptest"
	"usrsp.dev/services/vpp-adapter/adapter"
)

func TestReplayAfterVPPRestart(t *testing.T) {
	fake, a, evs := looped(t, t.TempDir())
	evs.WaitFor(t, contracts.EventReconciled)

	vhost := vhostBridge(4, 0)
	c := ctx(t)
	_, err := a.Attach(c, memifBridge(4))
	require.NoError(t, err)
	_, err = a.Attach(c, vhost)
	require.NoError(t, err)

	// VPP restarts and loses everything; its startup config brings back an
	// interface of the operator's and (say, from an old exec script) one
	// tagged as ours that no record wants.
	fake.Restart()
	operator := fake.AddInterface(vpptest.Interface{Name: "memif0/5", DevType: "memif", Tag: "operator"})
	fake.AddInterface(vpptest.Interface{Name: "memif0/6", DevType: "memif", Tag: adapter.TagPrefix + "0000deadbeef", MemifSocket: 0, MemifID: 6})
	fake.Calls()

	ev := evs.WaitFor(t, contracts.EventReconciled)
	assert.Contains(t, ev.Message, "desired 2, present 0, recreated 2, failed 0, stale removed 1")
	ifs := fake.Snapshot()
	assert.Equal(t, "operator", ifs["memif0/5"].Tag, "unowned interface untouched")
	assert.NotContains(t, ifs, "memif0/6", "stale owned interface removed")
	byTag := map[string]vpptest.Interface{}
	for _, i := range ifs {
		byTag[i.Tag] = i
	}
	for _, k := range []contracts.AttachmentKey{key, vhostKey} {
		i, ok := byTag[adapter.Tag(k)]
		require.True(t, ok, "%s recreated", k)
		assert.True(t, i.Up)
		assert.Equal(t, uint32(4), i.BD)
	}
	_, bds, _ := fake.State()
	assert.Equal(t, []string{`4 tag="usrsp" members=2`}, bds)
	assert.Contains(t, fake.Snapshot(), "memif0/5")
	_ = operator

	ready, why := a.Ready()
	assert.True(t, ready, why)
	// A repeat of the attach after the replay creates nothing.
	fake.Calls()
	_, err = a.Attach(c, memifBridge(4))
	require.NoError(t, err)
	assert.Equal(t, []string{"sw_interface_dump"}, fake.Calls())
}

func TestReplayOnStartFromRecords(t *testing.T) {
	dir := t.TempDir()
	// A first adapter attaches, then the node reboots: new VPP, new adapter.
	first := newHarnessIn(t, dir)
	_, err := first.a.Attach(ctx(t), l3Request())
	require.NoError(t, err)

	fake, _, evs := looped(t, dir)
	ev := evs.WaitFor(t, contracts.EventReconciled)
	assert.Contains(t, ev.Message, "recreated 1")
	assert.Equal(t, []string{
		"show_version", "sw_interface_dump", "memif_socket_filename_dump", "bridge_domain_dump", // replay: what exists?
		"memif_socket_filename_add_del_v2", "memif_create_v2", "sw_interface_tag_add_del",
		"sw_interface_dump", "create_loopback", "sw_interface_tag_add_del", "sw_interface_set_flags", // the network's loopback
		"sw_interface_add_del_address", "sw_interface_add_del_address", "proxy_arp_add_del",
		"sw_interface_set_unnumbered", "proxy_arp_intfc_enable_disable", "sw_interface_ip6_enable_disable", "ip6nd_proxy_enable_disable",
		"ip_route_add_del", "ip_route_add_del",
		"sw_interface_set_flags", "sw_interface_dump", "bridge_domain_dump",
	}, fake.Calls())
}

// The replay reads VPP's socket registrations and bridge domains once per
// pass, not once per record: with them per record, replaying 1000 memifs
// into one bridge domain took ~25 s on VPP 25.10.
func TestReplayReadsVPPOncePerPass(t *testing.T) {
	dir := t.TempDir()
	first := newHarnessIn(t, dir)
	for i := range 5 {
		r := memifBridge(4)
		r.Key.ContainerID = fmt.Sprintf("pod%d", i)
		r.Interface.SocketPath = fmt.Sprintf("%s/pod%d/memif-net1.sock", podBase, i)
		_, err := first.a.Attach(ctx(t), r)
		require.NoError(t, err)
	}

	fake, _, evs := looped(t, dir)
	ev := evs.WaitFor(t, contracts.EventReconciled)
	assert.Contains(t, ev.Message, "recreated 5")
	count := map[string]int{}
	for _, name := range fake.Calls() {
		count[name]++
	}
	assert.Equal(t, 1, count["memif_socket_filename_dump"])
	assert.Equal(t, 2, count["bridge_domain_dump"], "once before the records, once for stale domains")
	assert.Equal(t, 5, count["memif_socket_filename_add_del_v2"])
	assert.Equal(t, 1, count["bridge_domain_add_del_v2"], "the domain is created once, for the first record")
	sockets, bds, _ := fake.State()
	assert.Len(t, sockets, 6, "VPP's default socket 0 and one per pod")
	assert.Len(t, bds, 1)
	assert.Len(t, fake.Snapshot(), 6, "local0 and one memif per pod")
}

func TestIncompatibleVPPIsNamed(t *testing.T) {
	for _, tc := range []struct {
		unknown   string // the message whose CRC the fake VPP does not know
		found     string // IncompatibleError.Found
		wantFound string // in every surface: the VPP version found
	}{
		{unknown: "memif_create_v2", found: "25.10-fake", wantFound: "found VPP 25.10-fake"},
		// show_version itself changed: the version cannot be read.
		{unknown: "show_version_reply", found: vpp.UnknownVersion, wantFound: "found a VPP of unknown version"},
	} {
		t.Run(tc.unknown, func(t *testing.T) {
			fake := &incompatible{FakeVPP: vpptest.New(), unknown: tc.unknown}
			a, _, _ := newAdapter(t, t.TempDir())
			c, cancel := context.WithCancel(context.Background())
			downs := make(chan error, 1)
			loop := &vpp.Loop{
				NewAdapter: func() govppadapter.VppAPI { return fake },
				Up:         func(ctx context.Context, s vpp.Session) { _, _ = a.Up(ctx, s) },
				Down: func(err error) {
					a.Down(err)
					select { // the loop retries every millisecond: keep the first, never block it
					case downs <- err:
					default:
					}
				},
				MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond, ProbeInterval: time.Second, ProbeTimeout: time.Second,
			}
			done := make(chan struct{})
			go func() { defer close(done); loop.Run(c) }()
			t.Cleanup(func() { cancel(); <-done })
			select {
			case err := <-downs:
				var ie *vpp.IncompatibleError
				require.ErrorAs(t, err, &ie)
				assert.Equal(t, tc.found, ie.Found)
				require.Len(t, ie.Messages, 1)
				assert.Contains(t, ie.Messages[0], tc.unknown+"_")
			case <-time.After(10 * time.Second):
				t.Fatal("no connection failure reported")
			}
			wants := []string{"built for VPP 25.10", tc.wantFound, tc.unknown + "_"}
			ready, why := a.Ready()
			assert.False(t, ready)
			st, err := a.Status(ctx(t), &contracts.StatusRequest{})
			require.NoError(t, err)
			assert.False(t, st.Ready)
			assert.Equal(t, "VPP "+tc.found, st.Vswitch)
			_, attachErr := a.Attach(ctx(t), memifBridge(4))
			assert.Equal(t, contracts.CodeTryAgainLater, contracts.CodeOf(attachErr))
			for _, want := range wants {
				assert.Contains(t, why, want, "readyz reason")
				assert.Contains(t, st.Message, want, "status message")
				assert.Contains(t, attachErr.Error(), want, "attach error")
			}
		})
	}
}

// incompatible is a VPP that does not know one message (other CRC).
type incompatible struct {
	*vpptest.FakeVPP
	unknown string
}

func (i *incompatible) GetMsgID(name, crc string) (uint16, error) {
	if name == i.unknown {
		return 0, &govppadapter.UnknownMsgError{MsgName: name, MsgCrc: crc}
	}
	return i.FakeVPP.GetMsgID(name, crc)
}

// A state dir written by the vpp-adapter before libs/adapterkit/recordstore
// (0750, files 0640 named hex(sha256(key))[:32], a crash's temp file) loads
// as it is, and the adapter replays from it.
func TestStateDirOfOlderVersionLoads(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	require.NoError(t, os.Mkdir(dir, 0o750))
	sum := sha256.Sum256([]byte(key.String()))
	name := fmt.Sprintf("%x.json", sum[:16])
	old := `{"attachment": {"key": {"containerId": "0123456789abcdef", "ifName": "net1"}, "network": "vpp-net", "engine": "vpp",
	  "interface": {"ifType": "memif", "netType": "bridge", "socketPath": "` + podBase + `/0123456789abcdef/memif-net1.sock",
	    "memif": {"role": "master", "mode": "ethernet"}, "bridge": {"id": 4}}},
	  "tag": "` + adapter.Tag(key) + `", "swIfIndex": 3, "memifSocketFile": "` + podBase + `/0123456789abcdef/memif-net1.sock",
	  "memifSocketId": 1, "memifSocketAdded": true, "bridgeCreated": true}`
	require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(old), 0o640))
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".tmp-123"), []byte("{"), 0o640))

	fake, _, evs := looped(t, dir)
	ev := evs.WaitFor(t, contracts.EventReconciled)
	assert.Contains(t, ev.Message, "desired 1, present 0, recreated 1, failed 0")
	assert.Equal(t, uint32(4), byTag(t, fake, key).BD, "the memif is back in its bridge domain")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "the crash's temp file is gone")
	assert.Equal(t, name, entries[0].Name())
}
