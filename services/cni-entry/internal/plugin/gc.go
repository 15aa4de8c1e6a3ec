package plugin

import (
	"context"

	"usrsp.dev/contracts"
	"usrsp.dev/services/cni-entry/internal/poddata"
	"usrsp.dev/services/cni-entry/internal/sandbox"
)

// gc is CNI GC: the adapter removes every attachment of this network not
// in cni.dev/valid-attachments; for each one removed, its IPAM is released
// (host-local has no GC of its own) and its pod data and link removed.
// Finally IPAM's own GC runs, if the IPAM plugin has one.
func (p *Plugin) gc(inv *invocation) error {
	conf := inv.conf
	valid := make([]contracts.AttachmentKey, 0, len(conf.ValidAttachments))
	for _, a := range conf.ValidAttachments {
		k := contracts.AttachmentKey{ContainerID: a.ContainerID, IfName: a.IfName}
		// An attachment no adapter could ever have made cannot be protected.
		if contracts.ValidContainerID(k.ContainerID) && contracts.ValidIfName(k.IfName) {
			valid = append(valid, k)
		}
	}

	// The records tell where each attachment's files are.
	listed, err := call(p, inv, contracts.OpList, func(a Adapter, ctx context.Context, e contracts.Engine) (*contracts.ListResponse, error) {
		return a.List(ctx, e, &contracts.ListRequest{Network: conf.Name})
	})
	if err != nil {
		return err
	}
	records := map[contracts.AttachmentKey]contracts.Attachment{}
	for _, a := range listed.Attachments {
		records[a.Key] = a
	}
	resp, err := call(p, inv, contracts.OpGC, func(a Adapter, ctx context.Context, e contracts.Engine) (*contracts.GCResponse, error) {
		return a.GC(ctx, e, &contracts.GCRequest{Network: conf.Name, Valid: valid})
	})
	if err != nil {
		return err
	}

	var errs []error
	for _, key := range resp.Removed {
		inv.log.Info().Str("removed", key.String()).Msg("gc: stale attachment removed")
		errs = append(errs, p.releaseRemoved(inv, key, records[key]))
	}
	if conf.IPAM.Type != "" {
		ctx, cancel := context.WithTimeout(context.Background(), IPAMTimeout)
		err := p.IPAM.GC(ctx, conf.IPAM.Type, inv.args.StdinData, inv.ipamArgs(contracts.AttachmentKey{}))
		cancel()
		if unsupported(err) {
			inv.log.Debug().Err(err).Msg("ipam has no GC")
			err = nil
		}
		errs = append(errs, err)
	}
	return firstError(errs)
}

// releaseRemoved releases what cni-entry itself holds for a removed
// attachment: its IPAM address and its files.
func (p *Plugin) releaseRemoved(inv *invocation, key contracts.AttachmentKey, rec contracts.Attachment) error {
	conf := inv.conf
	var ipamErr error
	if conf.IPAM.Type != "" {
		ctx, cancel := context.WithTimeout(context.Background(), IPAMTimeout)
		ipamErr = p.IPAM.Del(ctx, conf.IPAM.Type, inv.args.StdinData, inv.ipamArgs(key))
		cancel()
	}
	file := dirSocketFile(conf)
	if m := rec.Interface.Memif; m != nil {
		file = m.SocketFile
		if m.Netns != "" {
			file = "" // abstract: no socket file, no link
		}
	} else if v := rec.Interface.Vhost; v != nil {
		file = v.SocketFile
	}
	var vethErr error
	if rec.Interface.IfType == contracts.IfTypeVeth { // by our name for it, not the record's
		vethErr = sandbox.Veth{HostName: contracts.HostVethName(key)}.Remove()
	}
	var filesErr error
	if paths, err := poddata.Locate(inv.layout(), key, rec.Pod.UID, file); err == nil {
		filesErr = poddata.Remove(paths, key)
	}
	return firstError([]error{ipamErr, vethErr, filesErr, poddata.RemoveFile(inv.deviceInfoFile(key))})
}

func firstError(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
