package adapter

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"usrsp.dev/contracts"
	"usrsp.dev/libs/confine"
	"usrsp.dev/services/ovs-adapter/ovs"
)

// opReconcile names reconcile in error events (it is no request op).
const opReconcile contracts.Op = "reconcile"

// ReconcileResult says what a reconcile changed.
type ReconcileResult struct {
	Removed   []string // ports usrsp owned without a record
	Recreated []string // recorded ports that were missing, broken or changed
	Relinked  int      // dpdkvhostuser sockets exposed again (OVS restarted)
	// Failed are ports vswitchd could not re-create (each also published
	// as an error event). They do not fail the reconcile, so one bad port
	// never keeps the adapter unready; Check reports them.
	Failed []string
}

// Reconcile makes OVS match the durable records: it waits until vswitchd
// has applied the database, deletes owned ports that have no record,
// re-creates recorded ports that are missing, broken (e.g. a memif socket
// left by a crashed vswitchd) or changed, and exposes dpdkvhostuser
// sockets again. Deletions and creations are each one OVS transaction, so
// a thousand ports cost two transactions. Run it on start and
// whenever the OVSDB connection or vswitchd was restarted.
func (a *Adapter) Reconcile(ctx context.Context) (ReconcileResult, error) {
	start := time.Now()
	a.gate.Lock()
	res, err := a.reconcile(ctx)
	a.gate.Unlock()
	d := time.Since(start)
	if err != nil {
		a.publish(contracts.ErrorEvent(opReconcile, nil, "", d, err))
		return res, err
	}
	a.metrics.reconciled(res)
	a.overlay.Changed() // a restarted vswitchd kept the tunnels in its database; the overlay checks them
	a.publish(contracts.ReconciledEvent(nil, "", d, fmt.Sprintf("%d attachments; removed %d ports without a record, re-created %d, re-exposed %d vhost-user sockets, %d failed",
		a.count(), len(res.Removed), len(res.Recreated), res.Relinked, len(res.Failed))))
	return res, nil
}

func (a *Adapter) reconcile(ctx context.Context) (ReconcileResult, error) {
	var res ReconcileResult
	a.mu.Lock()
	a.pmds = 0 // the switch may have new settings
	a.mu.Unlock()
	if err := a.cfg.OVS.Sync(ctx); err != nil {
		return res, err
	}
	owned, err := a.cfg.OVS.OwnedPorts(ctx)
	if err != nil {
		return res, err
	}
	live := map[string]ovs.Port{}
	for _, p := range owned {
		live[p.Name] = p
	}
	recs := a.snapshot()
	byName := map[string]Record{}
	var redo []Record
	a.mu.Lock()
	wasFailed := a.failed
	a.mu.Unlock()
	for _, rec := range recs {
		byName[rec.Port.Name] = rec
		p, ok := live[rec.Port.Name]
		if !ok || p.Broken() || portDiff(rec.Port, p) != "" {
			redo = append(redo, rec)
		} else if wasFailed[rec.Port.Name] { // vswitchd retried it itself (Sync made it reconfigure)
			k := rec.Attachment.Key
			a.publish(contracts.ReconciledEvent(&k, rec.Attachment.Network, 0, "port "+rec.Port.Name+" is back"))
		}
	}
	// VXLAN ports belong to the overlay's tunnel sync; only those of a
	// network without an attachment here go now.
	overlays := a.overlayBridges()
	var doomed []string
	for _, p := range owned {
		_, local := overlays[p.ExternalIDs[ovs.ExtNetwork]]
		if _, ok := byName[p.Name]; !ok && !(p.IsTunnel() && local) {
			doomed = append(doomed, p.Name)
		}
	}
	if _, err := a.cfg.OVS.DeletePorts(ctx, doomed); err != nil {
		return res, err
	}
	for _, n := range doomed {
		if _, ok := byName[n]; !ok {
			res.Removed = append(res.Removed, n)
			if live[n].IsTunnel() {
				a.publish(contracts.ReconciledEvent(nil, live[n].ExternalIDs[ovs.ExtNetwork], 0, "removed VXLAN port "+n+": no attachment of its network"))
				continue
			}
			a.publish(contracts.ReconciledEvent(keyOf(live[n]), live[n].ExternalIDs[ovs.ExtNetwork], 0, "removed port "+n+": no attachment record"))
		}
	}
	// Broken or changed ports are replaced in the same transaction that
	// re-creates missing ones: deleting a dpdkvhostuser port that failed
	// to bind in one vswitchd pass and adding it in another leaves DPDK
	// unable to bind its path again (seen with OVS 3.1 / DPDK 22.11).
	var specs []ovs.PortSpec
	kept := redo[:0] // a record whose socket path no longer confines is not handed to vswitchd
	for _, rec := range redo {
		switch err := a.clearSockets(rec); {
		case contracts.CodeOf(err) == contracts.CodeIO:
			return res, fmt.Errorf("re-create port %s: %w", rec.Port.Name, err)
		case err != nil:
			res.Failed = append(res.Failed, rec.Port.Name)
			k := rec.Attachment.Key
			a.publish(contracts.ErrorEvent(opReconcile, &k, rec.Attachment.Network, 0, fmt.Errorf("not re-creating port %s: %w", rec.Port.Name, err)))
		default:
			kept = append(kept, rec)
		}
	}
	redo = kept
	for i, rec := range redo {
		if old, ok := memifIndex(rec.Port); ok {
			// A fresh device name: DPDK may keep the old one allocated
			// after the restarted vswitchd failed to re-create it.
			rec = a.renameMemif(rec, old)
			if err := a.cfg.Store.Put(rec); err != nil {
				return res, err
			}
			a.putRecord(rec)
			redo[i] = rec
		}
		specs = append(specs, rec.Port)
	}
	ports, err := a.cfg.OVS.AddPorts(ctx, specs)
	if err != nil && len(ports) != len(specs) {
		return res, err
	}
	for i, rec := range redo {
		k := rec.Attachment.Key
		if p := ports[i]; p.Broken() {
			res.Failed = append(res.Failed, rec.Port.Name)
			a.publish(contracts.ErrorEvent(opReconcile, &k, rec.Attachment.Network, 0,
				contracts.Errorf(contracts.CodeVswitch, "ovs-vswitchd could not re-create port %s: %s", p.Name, p.Error)))
			continue
		}
		res.Recreated = append(res.Recreated, rec.Port.Name)
		a.publish(contracts.ReconciledEvent(&k, rec.Attachment.Network, 0, "re-created port "+rec.Port.Name))
	}
	failed := map[string]bool{}
	for _, n := range res.Failed {
		failed[n] = true
	}
	a.mu.Lock()
	a.failed = failed
	a.mu.Unlock()
	for _, rec := range recs {
		if rec.OVSSocket == "" || rec.Attachment.SocketPath == rec.OVSSocket || a.socketOK(rec) || slices.Contains(res.Failed, rec.Port.Name) {
			continue
		}
		ovsSock, err := a.ovsSocket(rec.Port.Name)
		if err != nil {
			return res, err
		}
		pod, err := a.podSocket(rec.Attachment.SocketPath)
		if err == nil {
			err = exposeSocket(ovsSock, pod)
		}
		if contracts.CodeOf(err) == contracts.CodeIO || contracts.CodeOf(err) == contracts.CodeVswitch {
			return res, err
		}
		if err != nil { // the pod's path no longer confines or holds a pod's file: its own problem
			k := rec.Attachment.Key
			a.publish(contracts.ErrorEvent(opReconcile, &k, rec.Attachment.Network, 0, fmt.Errorf("vhost-user socket of port %s not exposed again: %w", rec.Port.Name, err)))
			continue
		}
		res.Relinked++
	}
	// A restarted vswitchd made every socket anew: give them to the pods again.
	for _, rec := range recs {
		if slices.Contains(res.Failed, rec.Port.Name) {
			continue
		}
		if err := a.giveSockets(rec, 0); err != nil {
			k := rec.Attachment.Key
			a.publish(contracts.ErrorEvent(opReconcile, &k, rec.Attachment.Network, 0, fmt.Errorf("sockets of port %s not given to the pod: %w", rec.Port.Name, err)))
		}
	}
	return res, nil
}

// RemoveStaleSockets removes the sockets of recorded ports that vswitchd
// serves (memif server sockets, dpdkvhostuser sockets) if nobody listens
// on them, and returns how many it removed. Call it as soon as
// ovs-vswitchd has died: the next vswitchd re-creates those ports from the
// database while it starts, before any reconcile can run, and DPDK 22.11's
// memif fails on a path that exists and keeps the failed ethdev allocated
// (32 per process), so with many memif ports no later re-create finds a
// free one. A socket someone listens on is left alone and counted in
// inUse (a dying vswitchd closes its sockets one by one).
func (a *Adapter) RemoveStaleSockets() (removed, inUse int, err error) {
	var errs []error
	for _, rec := range a.snapshot() {
		for _, p := range a.vswitchdSockets(rec) {
			if _, err := confine.Lstat(p); err != nil {
				continue // gone already (or unreadable: reconcile reports it)
			}
			switch err := removeStaleSocket(p); contracts.CodeOf(err) {
			case 0:
				removed++
			case contracts.CodeConflict:
				if isInUse(err) {
					inUse++
				} // else not a socket: never ours to remove
			default:
				errs = append(errs, err)
			}
		}
	}
	return removed, inUse, errors.Join(errs...)
}

// vswitchdSockets are the sockets vswitchd serves for rec (memif server,
// dpdkvhostuser), confined; one that does not confine is left out.
func (a *Adapter) vswitchdSockets(rec Record) []confine.Path {
	var out []confine.Path
	if isMemifServer(rec) {
		if p, err := a.podSocket(rec.Attachment.SocketPath); err == nil {
			out = append(out, p)
		}
	}
	if rec.OVSSocket != "" {
		if p, err := a.ovsSocket(rec.Port.Name); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// clearSockets prepares rec's port to be re-created: its socket path must
// still confine (it is handed to vswitchd again) and the sockets a dead
// vswitchd left are removed.
func (a *Adapter) clearSockets(rec Record) error {
	if p := rec.Attachment.SocketPath; p != "" && p != rec.OVSSocket {
		pod, err := a.podSocket(p)
		if err != nil {
			return err
		}
		if _, err := confine.CheckSocketPath(socketField, p, pod); err != nil {
			return err
		}
	}
	for _, p := range a.vswitchdSockets(rec) {
		if err := removeStaleSocket(p); err != nil {
			return err
		}
	}
	return nil
}

// renameMemif gives rec's memif port a new net_memif index.
func (a *Adapter) renameMemif(rec Record, old int) Record {
	k := rec.Attachment.Key
	n := a.allocMemif(k)
	a.releaseMemif(old, k)
	rec.Port = rec.Port.Clone()
	dev := "net_memif" + strconv.Itoa(old) + ","
	rec.Port.Options["dpdk-devargs"] = "net_memif" + strconv.Itoa(n) + "," + strings.TrimPrefix(rec.Port.Options["dpdk-devargs"], dev)
	return rec
}

func isMemifServer(rec Record) bool {
	return rec.Port.Type == ovs.TypeDPDK && strings.Contains(rec.Port.Options["dpdk-devargs"], ",role=server,")
}

func keyOf(p ovs.Port) *contracts.AttachmentKey {
	return &contracts.AttachmentKey{ContainerID: p.ExternalIDs[ovs.ExtContainerID], IfName: p.ExternalIDs[ovs.ExtIfName]}
}
