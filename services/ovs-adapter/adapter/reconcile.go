package adapter

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"usrsp.dev/contracts"
	"usrsp.dev/services/ovs-adapter/ovs"
)

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
		a.cfg.Metrics.failed("reconcile", err)
		a.publish(contracts.Event{Kind: contracts.EventError, Duration: d, Message: "reconcile: " + err.Error()})
		return res, err
	}
	a.cfg.Metrics.reconciles.WithLabelValues("removed").Add(float64(len(res.Removed)))
	a.cfg.Metrics.reconciles.WithLabelValues("recreated").Add(float64(len(res.Recreated)))
	a.publish(contracts.Event{Kind: contracts.EventReconciled, Duration: d,
		Message: fmt.Sprintf("%d attachments; removed %d ports without a record, re-created %d, re-exposed %d vhost-user sockets, %d failed",
			a.count(), len(res.Removed), len(res.Recreated), res.Relinked, len(res.Failed))})
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
			a.publish(contracts.Event{Kind: contracts.EventReconciled, Key: &k, Network: rec.Attachment.Network,
				Message: "port " + rec.Port.Name + " is back"})
		}
	}
	var doomed []string
	for _, p := range owned {
		if _, ok := byName[p.Name]; !ok {
			doomed = append(doomed, p.Name)
		}
	}
	if _, err := a.cfg.OVS.DeletePorts(ctx, doomed); err != nil {
		return res, err
	}
	for _, n := range doomed {
		if _, ok := byName[n]; !ok {
			res.Removed = append(res.Removed, n)
			a.publish(contracts.Event{Kind: contracts.EventReconciled, Key: keyOf(live[n]), Network: live[n].ExternalIDs[ovs.ExtNetwork],
				Message: "removed port " + n + ": no attachment record"})
		}
	}
	// Broken or changed ports are replaced in the same transaction that
	// re-creates missing ones: deleting a dpdkvhostuser port that failed
	// to bind in one vswitchd pass and adding it in another leaves DPDK
	// unable to bind its path again (seen with OVS 3.1 / DPDK 22.11).
	var specs []ovs.PortSpec
	for i, rec := range redo {
		if isMemifServer(rec) {
			if err := removeStaleSocket(rec.Attachment.SocketPath); err != nil {
				return res, fmt.Errorf("re-create port %s: %w", rec.Port.Name, err)
			}
		}
		if rec.OVSSocket != "" {
			if err := removeStaleSocket(rec.OVSSocket); err != nil {
				return res, fmt.Errorf("re-create port %s: %w", rec.Port.Name, err)
			}
		}
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
			a.publish(contracts.Event{Kind: contracts.EventError, Key: &k, Network: rec.Attachment.Network,
				Message: fmt.Sprintf("reconcile: ovs-vswitchd could not re-create port %s: %s", p.Name, p.Error)})
			continue
		}
		res.Recreated = append(res.Recreated, rec.Port.Name)
		a.publish(contracts.Event{Kind: contracts.EventReconciled, Key: &k, Network: rec.Attachment.Network,
			Message: "re-created port " + rec.Port.Name})
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
		if err := exposeSocket(rec.OVSSocket, rec.Attachment.SocketPath, rec.Requested.Vhost.Group); err != nil {
			return res, err
		}
		res.Relinked++
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
		var paths []string
		if isMemifServer(rec) {
			paths = append(paths, rec.Attachment.SocketPath)
		}
		if rec.OVSSocket != "" {
			paths = append(paths, rec.OVSSocket)
		}
		for _, p := range paths {
			if _, err := os.Lstat(p); err != nil {
				continue // gone already (or unreadable: reconcile reports it)
			}
			switch err := removeStaleSocket(p); contracts.CodeOf(err) {
			case 0:
				removed++
			case contracts.CodeConflict:
				if strings.Contains(err.Error(), "in use") {
					inUse++
				} // else not a socket: never ours to remove
			default:
				errs = append(errs, err)
			}
		}
	}
	return removed, inUse, errors.Join(errs...)
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
