package adapter_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/contracts"
	"usrsp.dev/contracts/service"
	"usrsp.dev/libs/adapterkit/recordstore"
	"usrsp.dev/services/ovs-adapter/adapter"
	"usrsp.dev/services/ovs-adapter/ovs"
	"usrsp.dev/services/ovs-adapter/ovs/ovstest"
)

func TestAttachDetachEachKind(t *testing.T) {
	kinds := []struct {
		name string
		req  func(contracts.AttachmentKey, string) *contracts.AttachRequest
		typ  string
	}{
		{"vhostuserclient", vhostClientReq, ovs.TypeVhostUserClient},
		{"memif", memifReq, ovs.TypeDPDK},
	}
	for _, kind := range kinds {
		t.Run(kind.name, func(t *testing.T) {
			ctx := context.Background()
			fake := ovstest.New()
			e := newEnv(t, fake, "")
			k := key("c1", "net1")
			req := kind.req(k, e.sockDir)

			resp, err := e.a.Attach(ctx, req)
			require.NoError(t, err)
			att := resp.Attachment
			assert.Equal(t, adapter.PortName(k), att.HostIfName)
			assert.Equal(t, contracts.EngineOVSDPDK, att.Engine)
			assert.Equal(t, req.Interface.SocketPath, att.SocketPath)

			ports := fake.All()
			require.Len(t, ports, 1)
			assert.Equal(t, kind.typ, ports[0].Type)
			assert.Equal(t, map[string]string{ovs.ExtOwner: ovs.OwnerValue, ovs.ExtContainerID: "c1", ovs.ExtIfName: "net1", ovs.ExtNetwork: "net-a"}, ports[0].ExternalIDs)
			assert.FileExists(t, filepath.Join(e.store.Dir(), recordstore.FileName(att.Key)))

			// A replay returns the same attachment without touching OVS.
			again, err := e.a.Attach(ctx, req)
			require.NoError(t, err)
			assert.Equal(t, att, again.Attachment)
			assert.Equal(t, 1, fake.Calls("AddPorts"))

			// The same key with another configuration is a conflict.
			other := kind.req(k, e.sockDir)
			other.Interface.MTU = 9000
			_, err = e.a.Attach(ctx, other)
			assert.Equal(t, contracts.CodeConflict, contracts.CodeOf(err), "%v", err)

			list, err := e.a.List(ctx, &contracts.ListRequest{Network: "net-a"})
			require.NoError(t, err)
			assert.Len(t, list.Attachments, 1)

			det, err := e.a.Detach(ctx, &contracts.DetachRequest{Key: k})
			require.NoError(t, err)
			assert.True(t, det.Removed)
			assert.Empty(t, fake.All())
			assert.Empty(t, fake.Bridges(), "the bridge usrsp created is gone once empty")
			assert.NoFileExists(t, filepath.Join(e.store.Dir(), recordstore.FileName(att.Key)))

			det, err = e.a.Detach(ctx, &contracts.DetachRequest{Key: k})
			require.NoError(t, err)
			assert.False(t, det.Removed, "unknown attachment: success, nothing removed")

			kinds := e.events.kinds()
			assert.Equal(t, 2, kinds[contracts.EventAttached])
			assert.Equal(t, 1, kinds[contracts.EventDetached])
			assert.Equal(t, 1, kinds[contracts.EventError])
		})
	}
}

func TestAttachVhostServerExposesSocket(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil, "")
	k := key("c1", "net1")
	// The fake vswitchd does not create sockets: play its part.
	ovsSock := filepath.Join(e.runDir, adapter.PortName(k))
	l, err := net.Listen("unix", ovsSock)
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })

	resp, err := e.a.Attach(ctx, vhostServerReq(k, e.sockDir))
	require.NoError(t, err)
	pod := resp.Attachment.SocketPath
	c, err := net.Dial("unix", pod)
	require.NoError(t, err, "the pod reaches OVS's socket through its own path")
	_ = c.Close()

	_, err = e.a.Check(ctx, &contracts.CheckRequest{Key: k, Network: "net-a", Interface: vhostServerReq(k, e.sockDir).Interface})
	require.NoError(t, err)

	_, err = e.a.Detach(ctx, &contracts.DetachRequest{Key: k})
	require.NoError(t, err)
	assert.NoFileExists(t, pod)
	assert.FileExists(t, ovsSock, "OVS's own socket is OVS's business")
}

func TestCheck(t *testing.T) {
	ctx := context.Background()
	fake := ovstest.New()
	e := newEnv(t, fake, "")
	k := key("c1", "net1")
	req := vhostClientReq(k, e.sockDir)
	check := func(mut func(*contracts.CheckRequest)) error {
		cr := &contracts.CheckRequest{Key: k, Network: req.Network, Interface: req.Interface}
		if mut != nil {
			mut(cr)
		}
		_, err := e.a.Check(ctx, cr)
		return err
	}
	assert.Equal(t, contracts.CodeNotFound, contracts.CodeOf(check(nil)))
	_, err := e.a.Attach(ctx, req)
	require.NoError(t, err)
	require.NoError(t, check(nil))

	tests := []struct {
		name  string
		setup func()
		mut   func(*contracts.CheckRequest)
		code  contracts.Code
	}{
		{name: "other network", mut: func(c *contracts.CheckRequest) { c.Network = "other" }, code: contracts.CodeMismatch},
		{name: "other mtu", mut: func(c *contracts.CheckRequest) { c.Interface.MTU = 1400 }, code: contracts.CodeMismatch},
		{name: "broken port", setup: func() { fake.SetBroken(adapter.PortName(k), "could not open network device") }, code: contracts.CodeVswitch},
		{name: "port deleted behind our back", setup: func() { fake.Remove(adapter.PortName(k)) }, code: contracts.CodeNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.setup != nil {
				tt.setup()
			}
			err := check(tt.mut)
			assert.Equal(t, tt.code, contracts.CodeOf(err), "%v", err)
		})
	}
	// A replayed attach repairs the lost port.
	_, err = e.a.Attach(ctx, req)
	require.NoError(t, err)
	require.NoError(t, check(nil))
}

// TestCheckMemifAsListed: Check accepts a memif interface as requested and
// as List reports it (queues = PMDs+1), e.g. a client re-checking List's
// result, but not a third configuration.
func TestCheckMemifAsListed(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil, "")
	req := memifReq(key("m1", "net1"), e.sockDir)
	_, err := e.a.Attach(ctx, req)
	require.NoError(t, err)
	list, err := e.a.List(ctx, &contracts.ListRequest{Network: req.Network})
	require.NoError(t, err)
	require.Len(t, list.Attachments, 1)
	listed := list.Attachments[0].Interface
	require.NotEqual(t, req.Interface.Memif.Queues, listed.Memif.Queues, "the test needs made queues != requested")
	other := listed
	otherMemif := *listed.Memif
	otherMemif.Queues = listed.Memif.Queues + 1
	other.Memif = &otherMemif

	tests := []struct {
		name string
		in   contracts.HostInterface
		code contracts.Code
	}{
		{name: "as requested", in: req.Interface, code: 0},
		{name: "as listed", in: listed, code: 0},
		{name: "other queues", in: other, code: contracts.CodeMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.a.Check(ctx, &contracts.CheckRequest{Key: req.Key, Network: req.Network, Interface: tt.in})
			assert.Equal(t, tt.code, contracts.CodeOf(err), "%v", err)
		})
	}
}

func TestOwnershipIsRespected(t *testing.T) {
	ctx := context.Background()
	fake := ovstest.New()
	fake.AddOperatorPort("br-test", "eth-op")
	fake.AddOperatorBridge("br-empty")
	e := newEnv(t, fake, "")

	k := key("c1", "net1")
	_, err := e.a.Attach(ctx, vhostClientReq(k, e.sockDir))
	require.NoError(t, err)
	_, err = e.a.Detach(ctx, &contracts.DetachRequest{Key: k})
	require.NoError(t, err)
	_, err = e.a.GC(ctx, &contracts.GCRequest{Network: "net-a"})
	require.NoError(t, err)
	_, err = e.a.Reconcile(ctx)
	require.NoError(t, err)

	assert.Equal(t, []string{"br-empty", "br-test"}, fake.Bridges(), "operator bridges stay, even empty ones")
	ports := fake.All()
	require.Len(t, ports, 1)
	assert.Equal(t, "eth-op", ports[0].Name)

	// A port with our name that we do not own is a conflict, not taken over.
	fake.AddOperatorPort("br-test", adapter.PortName(key("c2", "net1")))
	_, err = e.a.Attach(ctx, vhostClientReq(key("c2", "net1"), e.sockDir))
	assert.Equal(t, contracts.CodeConflict, contracts.CodeOf(err), "%v", err)
}

func TestErrorsAndUndo(t *testing.T) {
	ctx := context.Background()
	fake := ovstest.New()
	e := newEnv(t, fake, "")
	k := key("c1", "net1")

	down := contracts.Errorf(contracts.CodeTryAgainLater, "OVSDB unreachable")
	fake.FailNext("AddPorts", down)
	_, err := e.a.Attach(ctx, memifReq(k, e.sockDir))
	assert.Equal(t, contracts.CodeTryAgainLater, contracts.CodeOf(err))
	list, _ := e.a.List(ctx, &contracts.ListRequest{})
	assert.Empty(t, list.Attachments, "no record for a failed attach")

	// vswitchd rejects the port: the error names it and the port is undone.
	fake.Break = func(s ovs.PortSpec) string { return "bind failed" }
	_, err = e.a.Attach(ctx, memifReq(k, e.sockDir))
	assert.Equal(t, contracts.CodeVswitch, contracts.CodeOf(err))
	assert.ErrorContains(t, err, adapter.PortName(k))
	assert.Empty(t, fake.All())
	fake.Break = nil

	resp, err := e.a.Attach(ctx, memifReq(k, e.sockDir))
	require.NoError(t, err)
	assert.Regexp(t, `^net_memif\d+,role=server,`, fake.All()[0].Options["dpdk-devargs"])
	assert.Equal(t, 2, resp.Attachment.Interface.Memif.Queues, "n_rxq = PMDs+1 is what the pod must use")

	fake.FailNext("DeletePorts", down)
	_, err = e.a.Detach(ctx, &contracts.DetachRequest{Key: k})
	assert.Equal(t, contracts.CodeTryAgainLater, contracts.CodeOf(err))
	list, _ = e.a.List(ctx, &contracts.ListRequest{})
	assert.Len(t, list.Attachments, 1, "the record stays until the port is really gone")
}

func TestMemifIndexesUnique(t *testing.T) {
	ctx := context.Background()
	fake := ovstest.New()
	e := newEnv(t, fake, "")
	for i := range 3 {
		_, err := e.a.Attach(ctx, memifReq(key(fmt.Sprintf("c%d", i), "net1"), e.sockDir))
		require.NoError(t, err)
	}
	_, err := e.a.Detach(ctx, &contracts.DetachRequest{Key: key("c1", "net1")})
	require.NoError(t, err)
	_, err = e.a.Attach(ctx, memifReq(key("c9", "net1"), e.sockDir))
	require.NoError(t, err)
	seen := map[string]bool{}
	for _, p := range fake.All() {
		dev, _, _ := strings.Cut(p.Options["dpdk-devargs"], ",")
		assert.False(t, seen[dev], "duplicate %s", dev)
		seen[dev] = true
	}
	assert.Len(t, seen, 3)
}

func TestStaleMemifSocket(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		create func(t *testing.T, path string)
		code   contracts.Code
	}{
		{name: "stale socket is removed", create: func(t *testing.T, path string) {
			l, err := net.Listen("unix", path)
			require.NoError(t, err)
			l.(*net.UnixListener).SetUnlinkOnClose(false)
			require.NoError(t, l.Close()) // the file stays, nobody listens: like a crashed vswitchd
		}},
		{name: "live socket is a conflict", create: func(t *testing.T, path string) {
			l, err := net.Listen("unix", path)
			require.NoError(t, err)
			t.Cleanup(func() { _ = l.Close() })
		}, code: contracts.CodeConflict},
		{name: "regular file is a conflict", create: func(t *testing.T, path string) {
			require.NoError(t, os.WriteFile(path, []byte("data"), 0o600))
		}, code: contracts.CodeConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil, "")
			req := memifReq(key("c1", "net1"), e.sockDir)
			tt.create(t, req.Interface.SocketPath)
			_, err := e.a.Attach(ctx, req)
			if tt.code != 0 {
				assert.Equal(t, tt.code, contracts.CodeOf(err), "%v", err)
				assert.FileExists(t, req.Interface.SocketPath, "never removes what is not stale")
				return
			}
			require.NoError(t, err)
			assert.NoFileExists(t, req.Interface.SocketPath)
		})
	}
}

// TestRemoveStaleSockets: after vswitchd died, the sockets of recorded
// memif server ports that nobody listens on are removed; a socket in use,
// a regular file and the pod's own socket (memif client role) are not.
func TestRemoveStaleSockets(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil, "")
	stale, live, file := memifReq(key("s1", "net1"), e.sockDir), memifReq(key("s2", "net1"), e.sockDir), memifReq(key("s3", "net1"), e.sockDir)
	client := memifReq(key("s4", "net1"), e.sockDir)
	client.Interface.Memif.Role = contracts.MemifRoleSlave
	for _, r := range []*contracts.AttachRequest{stale, live, file, client} {
		_, err := e.a.Attach(ctx, r)
		require.NoError(t, err)
	}
	listen := func(path string) net.Listener {
		l, err := net.Listen("unix", path)
		require.NoError(t, err)
		return l
	}
	l := listen(stale.Interface.SocketPath)
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	require.NoError(t, l.Close()) // what a dead vswitchd leaves
	l = listen(live.Interface.SocketPath)
	t.Cleanup(func() { _ = l.Close() })
	require.NoError(t, os.WriteFile(file.Interface.SocketPath, []byte("data"), 0o600))
	c := listen(client.Interface.SocketPath)
	c.(*net.UnixListener).SetUnlinkOnClose(false)
	require.NoError(t, c.Close()) // the pod's socket: never the adapter's to remove

	removed, inUse, err := e.a.RemoveStaleSockets()
	require.NoError(t, err)
	assert.Equal(t, 1, removed)
	assert.Equal(t, 1, inUse)
	assert.NoFileExists(t, stale.Interface.SocketPath)
	for _, r := range []*contracts.AttachRequest{live, file, client} {
		assert.FileExists(t, r.Interface.SocketPath)
	}
}

// TestConcurrentAttachDetach: many keys at once, several requests per key
// serialized the way contracts/service serializes them (the adapter
// itself expects that of its caller).
func TestConcurrentAttachDetach(t *testing.T) {
	ctx := context.Background()
	fake := ovstest.New()
	e := newEnv(t, fake, "")
	const keys, perKey = 20, 5
	var wg sync.WaitGroup
	var perKeyLock service.KeyedMutex
	errs := make(chan error, keys*perKey*2)
	for i := range keys {
		k := key(fmt.Sprintf("c%02d", i), "net1")
		req := memifReq(k, e.sockDir)
		if i%2 == 0 {
			req = vhostClientReq(k, e.sockDir)
		}
		for j := range perKey { // several goroutines on the same key
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer perKeyLock.Lock(k)()
				if _, err := e.a.Attach(ctx, req); err != nil {
					errs <- err
				}
				if i%4 == 0 && j == 0 {
					if _, err := e.a.Detach(ctx, &contracts.DetachRequest{Key: k}); err != nil {
						errs <- err
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Whatever the interleaving, records and OVS agree after a reconcile
	// and every memif port has its own device.
	_, err := e.a.Reconcile(ctx)
	require.NoError(t, err)
	list, err := e.a.List(ctx, &contracts.ListRequest{})
	require.NoError(t, err)
	ports := fake.All()
	assert.Len(t, ports, len(list.Attachments))
	devs := map[string]bool{}
	for _, p := range ports {
		if d := p.Options["dpdk-devargs"]; d != "" {
			dev, _, _ := strings.Cut(d, ",")
			assert.False(t, devs[dev], "duplicate %s", dev)
			devs[dev] = true
		}
	}
}

func TestGC(t *testing.T) {
	ctx := context.Background()
	fake := ovstest.New()
	e := newEnv(t, fake, "")
	for _, k := range []contracts.AttachmentKey{key("keep", "net1"), key("drop", "net1")} {
		_, err := e.a.Attach(ctx, vhostClientReq(k, e.sockDir))
		require.NoError(t, err)
	}
	other := vhostClientReq(key("other", "net1"), e.sockDir)
	other.Network = "net-b"
	_, err := e.a.Attach(ctx, other)
	require.NoError(t, err)
	// An owned port of net-a whose record was lost.
	lost := vhostClientReq(key("lost", "net1"), e.sockDir)
	_, err = e.a.Attach(ctx, lost)
	require.NoError(t, err)
	require.NoError(t, e.store.Delete(lost.Key))
	e2 := e.restart(t) // a restarted adapter, without the lost record

	resp, err := e2.a.GC(ctx, &contracts.GCRequest{Network: "net-a", Valid: []contracts.AttachmentKey{key("keep", "net1")}})
	require.NoError(t, err)
	assert.Equal(t, []contracts.AttachmentKey{key("drop", "net1"), key("lost", "net1")}, resp.Removed)
	list, err := e2.a.List(ctx, &contracts.ListRequest{})
	require.NoError(t, err)
	require.Len(t, list.Attachments, 2)
	assert.Equal(t, "keep", list.Attachments[0].Key.ContainerID)
	assert.Equal(t, "other", list.Attachments[1].Key.ContainerID)
	assert.Len(t, fake.All(), 2)
}

func TestReconcile(t *testing.T) {
	ctx := context.Background()
	fake := ovstest.New()
	fake.AddOperatorPort("br-test", "eth-op")
	e := newEnv(t, fake, "")
	reqs := map[string]*contracts.AttachRequest{}
	for _, c := range []string{"ok", "missing", "broken", "orphan"} {
		reqs[c] = memifReq(key(c, "net1"), e.sockDir)
		_, err := e.a.Attach(ctx, reqs[c])
		require.NoError(t, err)
	}
	fake.Remove(adapter.PortName(key("missing", "net1")))
	fake.SetBroken(adapter.PortName(key("broken", "net1")), "memif: bind failed")
	require.NoError(t, e.store.Delete(key("orphan", "net1")))

	e2 := e.restart(t) // as after an adapter restart
	res, err := e2.a.Reconcile(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{adapter.PortName(key("orphan", "net1"))}, res.Removed)
	assert.ElementsMatch(t, []string{adapter.PortName(key("missing", "net1")), adapter.PortName(key("broken", "net1"))}, res.Recreated)
	assert.Equal(t, 1, fake.Calls("AddPorts")-4, "re-creation is one batch")

	names := map[string]bool{}
	for _, p := range fake.All() {
		names[p.Name] = true
		assert.False(t, p.Broken())
	}
	assert.Equal(t, map[string]bool{"eth-op": true, adapter.PortName(key("ok", "net1")): true,
		adapter.PortName(key("missing", "net1")): true, adapter.PortName(key("broken", "net1")): true}, names)
	for _, c := range []string{"ok", "missing", "broken"} {
		_, err := e2.a.Check(ctx, &contracts.CheckRequest{Key: reqs[c].Key, Network: "net-a", Interface: reqs[c].Interface})
		assert.NoError(t, err, c)
	}
	assert.Positive(t, e2.events.kinds()[contracts.EventReconciled])

	// Reconcile that cannot reach OVS fails without changing anything.
	fake.FailNext("Sync", contracts.Errorf(contracts.CodeTryAgainLater, "OVSDB unreachable"))
	_, err = e2.a.Reconcile(ctx)
	assert.True(t, errors.Is(err, &contracts.Error{Code: contracts.CodeTryAgainLater}))
}

func TestStatus(t *testing.T) {
	fake := ovstest.New()
	e := newEnv(t, fake, "")
	st, err := e.a.Status(context.Background(), &contracts.StatusRequest{})
	require.NoError(t, err)
	assert.True(t, st.Ready)
	fake.FailNext("Info", contracts.Errorf(contracts.CodeTryAgainLater, "OVSDB unreachable"))
	st, err = e.a.Status(context.Background(), &contracts.StatusRequest{})
	require.NoError(t, err)
	assert.False(t, st.Ready)
	assert.Contains(t, st.Message, "unreachable")
}

// TestUpgradeStateDir: a state dir of an older adapter (records named
// after the port, a temp file a SIGKILL left) loads: the attachment is
// known, the record renamed, the leftover gone.
func TestUpgradeStateDir(t *testing.T) {
	ctx := context.Background()
	fake := ovstest.New()
	e := newEnv(t, fake, "")
	req := memifReq(key("old", "net1"), e.sockDir)
	att, err := e.a.Attach(ctx, req)
	require.NoError(t, err)
	dir := e.store.Dir()
	current := filepath.Join(dir, recordstore.FileName(req.Key))
	require.NoError(t, os.Rename(current, filepath.Join(dir, adapter.PortName(req.Key)+".json")))
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".tmp-123456"), []byte(`{"attach`), 0o600))

	e2 := e.restart(t) // the upgraded adapter
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1)
	assert.Equal(t, recordstore.FileName(req.Key), entries[0].Name())
	chk, err := e2.a.Check(ctx, &contracts.CheckRequest{Key: req.Key, Network: req.Network, Interface: req.Interface})
	require.NoError(t, err)
	assert.Equal(t, att.Attachment, chk.Attachment)
}
