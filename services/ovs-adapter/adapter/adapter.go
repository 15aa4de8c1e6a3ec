// Package adapter is the ovs-dpdk engine adapter: it implements
// contracts.Adapter on top of a narrow OVS client, a durable record per
// attachment and an event publisher, and reconciles OVS with the records.
package adapter

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"usrsp.dev/contracts"
	"usrsp.dev/libs/adapterkit"
	"usrsp.dev/libs/adapterkit/overlay"
	"usrsp.dev/libs/confine"
	"usrsp.dev/services/ovs-adapter/ovs"
)

// Config configures an Adapter.
type Config struct {
	OVS    ovs.OVS
	Store  *Store
	Events contracts.EventPublisher
	// Metrics are the daemon's (nil: none).
	Metrics *adapterkit.Metrics
	// OVSRunDir is ovs-vswitchd's run dir, where it creates dpdkvhostuser
	// sockets (default /var/run/openvswitch).
	OVSRunDir string
	// Roots are the directories the adapter may touch (required): the pod
	// directories, where request socket paths must lead, and OVSRunDir.
	Roots *confine.Roots
	// Version is the adapter's version for Status.
	Version string
	// OnEventError, if set, hears about events that could not be
	// published (they never fail an operation).
	OnEventError func(error)
	// VTEP is this node's underlay address (--vtep), the local end of the
	// VXLAN ports of overlay networks; zero: overlay networks are refused.
	VTEP netip.Addr
}

// Adapter implements contracts.Adapter for OVS-DPDK. Like every
// contracts.Adapter it expects its caller to serialize requests per
// attachment key (contracts/service does); different keys run in parallel.
type Adapter struct {
	cfg     Config
	metrics *metrics
	// gate lets reconcile and GC see OVS and the records without an
	// attach or detach half done: requests hold it shared, reconcile and
	// GC (which have no key, so nothing else serializes them) exclusively.
	gate sync.RWMutex

	mu      sync.Mutex
	records map[contracts.AttachmentKey]Record
	memif   map[int]contracts.AttachmentKey // net_memif<N> in use
	// memifNext is where the search for a free index starts: indexes go
	// round rather than lowest-first, because DPDK 22.11 can keep a
	// net_memif<N> name allocated after a failed attach in that vswitchd.
	memifNext int
	pmds      int // PMD threads; 0: ask OVS
	// failed are the ports the last reconcile left failed, so the next
	// one can say when they are back.
	failed map[string]bool
	// overlay hears about membership and vswitch changes (SetOverlay).
	overlay overlay.Hook
	// tunnelMu serializes the changes of VXLAN ports (SyncTunnels, and
	// dropping a network's after its last detach) with their reading of
	// the records. Taken after gate.
	tunnelMu sync.Mutex
}

var _ contracts.Adapter = (*Adapter)(nil)

// New loads the durable records. Call Reconcile before serving.
func New(cfg Config) (*Adapter, error) {
	if cfg.OVS == nil || cfg.Store == nil || cfg.Events == nil || cfg.Roots == nil {
		return nil, errors.New("adapter: OVS, Store, Events and Roots are required")
	}
	if cfg.OVSRunDir == "" {
		cfg.OVSRunDir = "/var/run/openvswitch"
	}
	recs, err := cfg.Store.List()
	if err != nil {
		return nil, err
	}
	a := &Adapter{cfg: cfg, metrics: newMetrics(cfg.Metrics), records: map[contracts.AttachmentKey]Record{}, memif: map[int]contracts.AttachmentKey{}}
	if _, err := a.ovsSocket("x"); err != nil {
		return nil, fmt.Errorf("adapter: the OVS run dir must be one of the roots: %w", err)
	}
	for _, r := range recs {
		// A record names paths the adapter acts on and hands to vswitchd:
		// one that does not hold up (a tampered state file) is left out,
		// so reconcile deletes its port and nothing else is touched.
		if err := a.checkRecord(r); err != nil {
			k := r.Attachment.Key
			a.publish(contracts.ErrorEvent(opReconcile, &k, r.Attachment.Network, 0, err))
			continue
		}
		a.putRecordLocked(r)
	}
	a.metrics.attachments(len(a.records))
	return a, nil
}

// Attach implements contracts.Adapter.
func (a *Adapter) Attach(ctx context.Context, r *contracts.AttachRequest) (*contracts.AttachResponse, error) {
	start := time.Now()
	a.gate.RLock()
	att, err := a.attach(ctx, r)
	a.gate.RUnlock()
	d := time.Since(start)
	if err != nil {
		a.publish(contracts.ErrorEvent(contracts.OpAttach, &r.Key, r.Network, d, err))
		return nil, err
	}
	a.overlay.Changed()
	a.publish(contracts.AttachedEvent(r.Key, r.Network, d,
		fmt.Sprintf("port %s (%s) on bridge %s", att.HostIfName, a.portType(r.Key), a.bridgeOf(r.Key))))
	return &contracts.AttachResponse{Attachment: att}, nil
}

func (a *Adapter) attach(ctx context.Context, r *contracts.AttachRequest) (contracts.Attachment, error) {
	if err := a.checkKey(r.Key); err != nil {
		return contracts.Attachment{}, err
	}
	// The socket path is confined before anything is done with it.
	var sock confine.Path
	if r.Interface.SocketPath != "" {
		var err error
		if sock, err = a.podSocket(r.Interface.SocketPath); err != nil {
			return contracts.Attachment{}, err
		}
		if _, err := confine.CheckSocketPath(socketField, r.Interface.SocketPath, sock); err != nil {
			return contracts.Attachment{}, err
		}
	}
	if err := a.checkOverlay(r.Interface); err != nil {
		return contracts.Attachment{}, err
	}
	pmds, err := a.pmdCount(ctx)
	if err != nil {
		return contracts.Attachment{}, err
	}
	plan, err := planPort(r, pmds)
	if err != nil {
		return contracts.Attachment{}, err
	}
	name := plan.spec.Name
	rec, had := a.record(r.Key)
	if had {
		if rec.Attachment.Network != r.Network || !reflect.DeepEqual(rec.Requested, r.Interface) {
			return contracts.Attachment{}, contracts.Errorf(contracts.CodeConflict,
				"attachment %s exists with another network or interface configuration (port %s)", r.Key, name)
		}
		live, err := a.cfg.OVS.Ports(ctx, []string{name})
		if err != nil {
			return contracts.Attachment{}, err
		}
		if len(live) == 1 && !live[0].Broken() && a.socketOK(rec) {
			return rec.Attachment, nil // a replay: nothing to do
		}
		// Known but lost or broken in OVS: AddPorts below replaces it.
	}

	success := false
	index := -1
	if plan.kind == kindMemif {
		if had { // a fresh name: the old one may be stuck in DPDK
			if old, ok := memifIndex(rec.Port); ok {
				a.releaseMemif(old, r.Key)
			}
		}
		index = a.allocMemif(r.Key)
		defer func() {
			if !success {
				a.releaseMemif(index, r.Key)
			}
		}()
	}
	spec := plan.specWithMemif(index)
	if plan.kind == kindMemif && r.Interface.Memif.Role == contracts.MemifRoleMaster {
		if err := a.clearSocket(ctx, sock, name); err != nil {
			return contracts.Attachment{}, err
		}
	}
	var ovsSock confine.Path
	if plan.kind == kindVhostServer { // a socket left by a crashed vswitchd blocks the bind
		if ovsSock, err = a.ovsSocket(name); err != nil {
			return contracts.Attachment{}, err
		}
		if err := removeStaleSocket(ovsSock); contracts.CodeOf(err) == contracts.CodeIO {
			return contracts.Attachment{}, err
		}
	}
	rec = Record{Requested: r.Interface, Port: spec}
	socketPath := plan.socketPath
	if plan.kind == kindVhostServer {
		rec.OVSSocket = a.ovsSocketPath(name)
		if socketPath == "" {
			socketPath = rec.OVSSocket
		}
	}
	made := r.Interface
	if plan.kind == kindMemif {
		m := *made.Memif
		m.Queues = plan.queues
		made.Memif = &m
	}
	rec.Attachment = contracts.Attachment{
		Key: r.Key, Network: r.Network, Engine: contracts.EngineOVSDPDK, Pod: r.Pod, Interface: made,
		HostIfName: name, SocketPath: socketPath, HostMAC: plan.hostMAC, CreatedAt: time.Now().UTC(),
	}
	// A new attachment's record is written while vswitchd makes the port,
	// so its fsyncs add no time of their own; it goes again if the attach
	// fails. (A known attachment keeps its old record until the port is
	// made.) Should the adapter die in between, reconcile re-creates the
	// port and the runtime's DEL after the failed ADD removes it.
	var early chan error
	if !had {
		early = make(chan error, 1)
		go func(rec Record) { early <- a.cfg.Store.Put(rec) }(rec)
		defer func() {
			if !success {
				_ = a.cfg.Store.Delete(r.Key)
			}
		}()
	}
	ovsStart := time.Now()
	ports, err := a.cfg.OVS.AddPorts(ctx, []ovs.PortSpec{spec})
	inOVS := time.Since(ovsStart)
	var putErr error
	if early != nil {
		putErr = <-early
	}
	if ports != nil || err == nil {
		defer func() {
			if !success {
				_, _ = a.cfg.OVS.DeletePorts(context.WithoutCancel(ctx), []string{name})
			}
		}()
	}
	if err != nil {
		return contracts.Attachment{}, err
	}
	if putErr != nil {
		return contracts.Attachment{}, putErr
	}

	if err := a.giveSockets(rec, socketWait); err != nil {
		return contracts.Attachment{}, err
	}
	if plan.kind == kindVhostServer && socketPath != rec.OVSSocket {
		if err := exposeSocket(ovsSock, sock); err != nil {
			return contracts.Attachment{}, err
		}
		defer func() {
			if !success {
				_ = unexposeSocket(sock)
			}
		}()
	}
	written := early != nil
	if mac := hostMAC(ports[0]); mac != rec.Attachment.HostMAC { // not the planned one
		rec.Attachment.HostMAC, written = mac, false
	}
	if !written {
		if err := a.cfg.Store.Put(rec); err != nil {
			return contracts.Attachment{}, err
		}
	}
	a.putRecord(rec)
	a.metrics.vswitchCall(inOVS)
	success = true
	return rec.Attachment, nil
}

// hostMAC is the port's MAC as vswitchd uses it; "" for vhost-user ports,
// which have none (OVS reports 00:00:00:00:00:00).
func hostMAC(p ovs.Port) string {
	if p.MACInUse == "00:00:00:00:00:00" {
		return ""
	}
	return p.MACInUse
}

// clearSocket makes the path free for a memif server socket: a socket
// nobody listens on is stale and removed; if our own port still listens
// on it (a lost record), that port is deleted first.
func (a *Adapter) clearSocket(ctx context.Context, path confine.Path, port string) error {
	err := removeStaleSocket(path)
	if !isInUse(err) {
		return err
	}
	deleted, derr := a.cfg.OVS.DeletePorts(ctx, []string{port})
	if derr != nil {
		return derr
	}
	if len(deleted) == 0 {
		return err
	}
	return removeStaleSocket(path)
}

// Detach implements contracts.Adapter.
func (a *Adapter) Detach(ctx context.Context, r *contracts.DetachRequest) (*contracts.DetachResponse, error) {
	start := time.Now()
	a.gate.RLock()
	removedName := PortName(r.Key)
	if rec, ok := a.record(r.Key); ok {
		removedName = rec.Port.Name
	}
	removed, err := a.detach(ctx, r.Key)
	a.gate.RUnlock()
	d := time.Since(start)
	if err != nil {
		a.publish(contracts.ErrorEvent(contracts.OpDetach, &r.Key, r.Network, d, err))
		return nil, err
	}
	a.overlay.Changed()
	if removed {
		a.publish(contracts.DetachedEvent(r.Key, r.Network, d, "port "+removedName))
	}
	return &contracts.DetachResponse{Removed: removed}, nil
}

// detach removes the port (if usrsp owns it), what was made for its
// socket, and the record. Unknown attachments are success.
func (a *Adapter) detach(ctx context.Context, k contracts.AttachmentKey) (bool, error) {
	if err := a.checkKey(k); err != nil {
		return false, err
	}
	rec, had := a.record(k)
	deleted, err := a.cfg.OVS.DeletePorts(ctx, portNames(k))
	if err != nil {
		return false, err
	}
	if had {
		if err := a.forget(rec); err != nil {
			return false, err
		}
		a.dropTunnelsAfter(ctx, contracts.OpDetach, rec)
	}
	return had || len(deleted) > 0, nil
}

// forget cleans up after a deleted port and drops its record. A socket
// path that no longer confines (its link is gone, or the record was
// tampered with) is left alone: nothing outside the roots is touched.
func (a *Adapter) forget(rec Record) error {
	sock, confined := a.podSocket(rec.Attachment.SocketPath)
	switch {
	case confined != nil:
	case rec.OVSSocket != "" && rec.Attachment.SocketPath != rec.OVSSocket:
		// A pod's file where the link was is not ours: the port is gone, so is the record.
		if err := unexposeSocket(sock); contracts.CodeOf(err) == contracts.CodeIO {
			return err
		}
	case isMemifServer(rec):
		// DPDK unlinks its memif socket on close; after a vswitchd crash
		// the file stays. Remove it if nobody listens.
		if err := removeStaleSocket(sock); contracts.CodeOf(err) == contracts.CodeIO {
			return err
		}
	}
	if err := a.cfg.Store.Delete(rec.Attachment.Key); err != nil {
		return err
	}
	a.dropRecord(rec.Attachment.Key)
	return nil
}

// Check implements contracts.Adapter.
func (a *Adapter) Check(ctx context.Context, r *contracts.CheckRequest) (*contracts.CheckResponse, error) {
	start := time.Now()
	a.gate.RLock()
	att, err := a.check(ctx, r)
	a.gate.RUnlock()
	if err != nil {
		a.publish(contracts.ErrorEvent(contracts.OpCheck, &r.Key, r.Network, time.Since(start), err))
		return nil, err
	}
	return &contracts.CheckResponse{Attachment: att}, nil
}

func (a *Adapter) check(ctx context.Context, r *contracts.CheckRequest) (contracts.Attachment, error) {
	rec, ok := a.record(r.Key)
	if !ok {
		return contracts.Attachment{}, contracts.Errorf(contracts.CodeNotFound, "attachment %s not found on ovs-dpdk", r.Key)
	}
	if rec.Attachment.Network != r.Network {
		return contracts.Attachment{}, contracts.Errorf(contracts.CodeMismatch, "attachment %s belongs to network %q, not %q", r.Key, rec.Attachment.Network, r.Network)
	}
	// The interface as requested, or as List and Attach reported it (memif
	// queues are what was made: PMDs+1), so a client can re-check either.
	if !reflect.DeepEqual(rec.Requested, r.Interface) && !reflect.DeepEqual(rec.Attachment.Interface, r.Interface) {
		return contracts.Attachment{}, contracts.Errorf(contracts.CodeMismatch, "attachment %s was made with another interface configuration", r.Key)
	}
	live, err := a.cfg.OVS.Ports(ctx, []string{rec.Port.Name})
	if err != nil {
		return contracts.Attachment{}, err
	}
	if len(live) == 0 {
		return contracts.Attachment{}, contracts.Errorf(contracts.CodeNotFound, "OVS port %s of attachment %s is missing from bridge %s", rec.Port.Name, r.Key, rec.Port.Bridge)
	}
	if diff := portDiff(rec.Port, live[0]); diff != "" {
		return contracts.Attachment{}, contracts.Errorf(contracts.CodeMismatch, "OVS port %s of attachment %s: %s", rec.Port.Name, r.Key, diff)
	}
	if live[0].Broken() {
		return contracts.Attachment{}, contracts.Errorf(contracts.CodeVswitch, "OVS port %s of attachment %s is broken: %s", rec.Port.Name, r.Key, live[0].Error)
	}
	if !a.socketOK(rec) {
		return contracts.Attachment{}, contracts.Errorf(contracts.CodeMismatch, "vhost-user socket %s no longer leads to OVS's %s", rec.Attachment.SocketPath, rec.OVSSocket)
	}
	return rec.Attachment, nil
}

// portDiff says how the live port differs from the one created ("" if not).
func portDiff(want ovs.PortSpec, got ovs.Port) string {
	switch {
	case got.Bridge != want.Bridge:
		return fmt.Sprintf("on bridge %s, want %s", got.Bridge, want.Bridge)
	case got.Type != want.Type:
		return fmt.Sprintf("type %s, want %s", got.Type, want.Type)
	case got.Tag != want.Tag:
		return fmt.Sprintf("VLAN tag %d, want %d", got.Tag, want.Tag)
	case got.MTU != want.MTU:
		return fmt.Sprintf("mtu_request %d, want %d", got.MTU, want.MTU)
	}
	for k, v := range want.Options {
		if got.Options[k] != v {
			return fmt.Sprintf("options:%s=%q, want %q", k, got.Options[k], v)
		}
	}
	return ""
}

func (a *Adapter) socketOK(rec Record) bool {
	if rec.OVSSocket == "" || rec.Attachment.SocketPath == rec.OVSSocket {
		return true
	}
	ovsSock, err1 := a.ovsSocket(rec.Port.Name)
	pod, err2 := a.podSocket(rec.Attachment.SocketPath)
	return err1 == nil && err2 == nil && socketExposed(ovsSock, pod)
}

// List implements contracts.Adapter.
func (a *Adapter) List(_ context.Context, r *contracts.ListRequest) (*contracts.ListResponse, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := []contracts.Attachment{}
	for _, rec := range a.records {
		if r.Network == "" || rec.Attachment.Network == r.Network {
			out = append(out, rec.Attachment)
		}
	}
	slices.SortFunc(out, func(x, y contracts.Attachment) int { return strings.Compare(x.Key.String(), y.Key.String()) })
	return &contracts.ListResponse{Attachments: out}, nil
}

// GC implements contracts.Adapter: it removes every attachment of the
// network that is not valid, by record and by OVS external_ids (ports
// whose record was lost), in one OVS transaction.
func (a *Adapter) GC(ctx context.Context, r *contracts.GCRequest) (*contracts.GCResponse, error) {
	start := time.Now()
	// Exclusive, like reconcile: a consistent view of records and OVS, and
	// no attach in flight of a key the GC does not know as valid yet.
	a.gate.Lock()
	defer a.gate.Unlock()
	removed, err := a.gc(ctx, r)
	d := time.Since(start)
	if err != nil {
		a.publish(contracts.ErrorEvent(contracts.OpGC, nil, r.Network, d, err))
		return nil, err
	}
	a.overlay.Changed()
	for _, k := range removed {
		a.publish(contracts.GCEvent(k, r.Network, d, "port "+PortName(k)))
	}
	return &contracts.GCResponse{Removed: removed}, nil
}

func (a *Adapter) gc(ctx context.Context, r *contracts.GCRequest) ([]contracts.AttachmentKey, error) {
	valid := map[contracts.AttachmentKey]bool{}
	for _, k := range r.Valid {
		valid[k] = true
	}
	owned, err := a.cfg.OVS.OwnedPorts(ctx)
	if err != nil {
		return nil, err
	}
	doomed := map[contracts.AttachmentKey]bool{}
	for _, rec := range a.snapshot() {
		if rec.Attachment.Network == r.Network && !valid[rec.Attachment.Key] {
			doomed[rec.Attachment.Key] = true
		}
	}
	for _, p := range owned {
		k := contracts.AttachmentKey{ContainerID: p.ExternalIDs[ovs.ExtContainerID], IfName: p.ExternalIDs[ovs.ExtIfName]}
		if p.ExternalIDs[ovs.ExtNetwork] == r.Network && !valid[k] && slices.Contains(portNames(k), p.Name) {
			doomed[k] = true
		}
	}
	return a.remove(ctx, doomed)
}

// remove deletes the ports of keys in one transaction and forgets them.
func (a *Adapter) remove(ctx context.Context, keys map[contracts.AttachmentKey]bool) ([]contracts.AttachmentKey, error) {
	out := []contracts.AttachmentKey{}
	if len(keys) == 0 {
		return out, nil
	}
	names := make([]string, 0, 2*len(keys))
	for k := range keys {
		names = append(names, portNames(k)...)
		out = append(out, k)
	}
	if _, err := a.cfg.OVS.DeletePorts(ctx, names); err != nil {
		return nil, err
	}
	for _, k := range out {
		if rec, ok := a.record(k); ok {
			if err := a.forget(rec); err != nil {
				return nil, err
			}
			a.dropTunnelsAfter(ctx, contracts.OpGC, rec)
		}
	}
	slices.SortFunc(out, func(x, y contracts.AttachmentKey) int { return strings.Compare(x.String(), y.String()) })
	return out, nil
}

// Status implements contracts.Adapter.
func (a *Adapter) Status(ctx context.Context, _ *contracts.StatusRequest) (*contracts.StatusResponse, error) {
	resp := &contracts.StatusResponse{Engine: contracts.EngineOVSDPDK, Version: a.cfg.Version, Attachments: a.count()}
	info, err := a.cfg.OVS.Info(ctx)
	switch {
	case err != nil:
		resp.Message = err.Error()
	case !info.DPDKInitialized:
		resp.Vswitch = "Open vSwitch " + info.Version
		resp.Message = "OVS is up but DPDK is not initialized (other_config:dpdk-init=true?)"
	default:
		resp.Ready, resp.Vswitch = true, "Open vSwitch "+info.Version
	}
	return resp, nil
}

func (a *Adapter) checkKey(k contracts.AttachmentKey) error {
	if !contracts.ValidContainerID(k.ContainerID) || !contracts.ValidIfName(k.IfName) {
		return contracts.Errorf(contracts.CodeInvalidConfig, "attachment key %q is not a valid container id and interface name", k.String())
	}
	return nil
}

func (a *Adapter) publish(ev contracts.Event) {
	ev.Engine = contracts.EngineOVSDPDK
	if err := a.cfg.Events.Publish(ev); err != nil && a.cfg.OnEventError != nil {
		a.cfg.OnEventError(err)
	}
}

// pmdCount is the switch's PMD thread count, read once per connection
// (reconcile resets it).
func (a *Adapter) pmdCount(ctx context.Context) (int, error) {
	a.mu.Lock()
	n := a.pmds
	a.mu.Unlock()
	if n > 0 {
		return n, nil
	}
	info, err := a.cfg.OVS.Info(ctx)
	if err != nil {
		return 0, err
	}
	a.mu.Lock()
	a.pmds = info.PMDs
	a.mu.Unlock()
	return info.PMDs, nil
}

// Record bookkeeping.

func (a *Adapter) record(k contracts.AttachmentKey) (Record, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	r, ok := a.records[k]
	return r, ok
}

func (a *Adapter) snapshot() []Record {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]Record, 0, len(a.records))
	for _, r := range a.records {
		out = append(out, r)
	}
	return out
}

func (a *Adapter) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.records)
}

func (a *Adapter) portType(k contracts.AttachmentKey) string {
	r, _ := a.record(k)
	return r.Port.Type
}

func (a *Adapter) bridgeOf(k contracts.AttachmentKey) string {
	r, _ := a.record(k)
	return r.Port.Bridge
}

func (a *Adapter) putRecord(r Record) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.putRecordLocked(r)
	a.metrics.attachments(len(a.records))
}

func (a *Adapter) putRecordLocked(r Record) {
	a.records[r.Attachment.Key] = r
	if n, ok := memifIndex(r.Port); ok {
		a.memif[n] = r.Attachment.Key
		a.memifNext = max(a.memifNext, (n+1)%maxMemifIndex)
	}
}

func (a *Adapter) dropRecord(k contracts.AttachmentKey) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if n, ok := memifIndex(a.records[k].Port); ok && a.memif[n] == k {
		delete(a.memif, n)
	}
	delete(a.records, k)
	a.metrics.attachments(len(a.records))
}

// maxMemifIndex bounds net_memif<N>; indexes wrap around below it.
const maxMemifIndex = 1 << 16

// allocMemif reserves the next free net_memif index for k.
func (a *Adapter) allocMemif(k contracts.AttachmentKey) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	for n := a.memifNext; ; n = (n + 1) % maxMemifIndex {
		if _, used := a.memif[n]; !used {
			a.memif[n] = k
			a.memifNext = (n + 1) % maxMemifIndex
			return n
		}
	}
}

func (a *Adapter) releaseMemif(n int, k contracts.AttachmentKey) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.memif[n] == k {
		delete(a.memif, n)
	}
}
