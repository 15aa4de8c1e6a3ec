package plugin

import (
	"context"

	current "github.com/containernetworking/cni/pkg/types/100"

	"usrsp.dev/contracts"
	"usrsp.dev/services/cni-entry/internal/poddata"
	"usrsp.dev/services/cni-entry/internal/sandbox"
)

// add is CNI ADD: IPAM, the socket directory, the attachment on the
// adapter, the pod's data, then the result. Whatever fails undoes all the
// steps before it.
func (p *Plugin) add(inv *invocation) (err error) {
	conf, key := inv.conf, inv.key
	// No IPAM, adapter call or directory for a sandbox that is not there.
	if err := sandbox.CheckNetns(inv.args.Netns); err != nil {
		return err
	}
	paths, sock, access, err := inv.podPaths()
	if err != nil {
		return err
	}
	hostSocket := sock.Reported

	success := false

	var ipam *current.Result
	if conf.IPAM.Type != "" {
		ctx, cancel := context.WithTimeout(context.Background(), IPAMTimeout)
		r, err := p.IPAM.Add(ctx, conf.IPAM.Type, inv.args.StdinData, inv.ipamArgs(key))
		cancel()
		if err != nil {
			return err
		}
		defer func() {
			if !success {
				p.undoIPAM(inv, key)
			}
		}()
		if ipam, err = current.NewResultFromResult(r); err != nil {
			return contracts.Errorf(contracts.CodeDecode, "ipam.type %s returned a result that cannot be read: %v", conf.IPAM.Type, err)
		}
	}

	// Connected before anything is written, so an unreachable adapter
	// leaves nothing to undo but IPAM.
	if _, err := p.connect(inv); err != nil {
		return err
	}

	if err := poddata.Prepare(paths, access); err != nil {
		return err
	}
	devInfoFile := inv.deviceInfoFile(key)
	defer func() {
		if !success {
			if err := poddata.Remove(paths, key); err != nil {
				inv.log.Warn().Err(err).Msg("undo: cannot remove pod data")
			}
			if err := poddata.RemoveFile(devInfoFile); err != nil {
				inv.log.Warn().Err(err).Msg("undo: cannot remove device info")
			}
		}
	}()

	// The pod's netdev exists before the adapter plugs in its host end.
	if conf.Veth() {
		v := inv.veth()
		if err := v.Setup(cniResult(conf, key, inv.args.Netns, "", ipam)); err != nil {
			return err
		}
		defer func() {
			if !success {
				if err := v.Remove(); err != nil {
					inv.log.Warn().Err(err).Msg("undo: cannot remove the veth pair")
				}
			}
		}()
	}

	req := &contracts.AttachRequest{Key: key, Network: conf.Name, Netns: inv.args.Netns, Pod: conf.Pod,
		Interface: hostInterface(conf, key, sock, ipConfigs(ipam), access)}
	resp, err := call(p, inv, contracts.OpAttach, func(a Adapter, ctx context.Context, e contracts.Engine) (*contracts.AttachResponse, error) {
		return a.Attach(ctx, e, req)
	})
	// Even a failed attach is undone: one that timed out may still
	// complete on the adapter, and detaching an unknown key is success.
	defer func() {
		if !success {
			p.undoAttach(inv)
		}
	}()
	if err != nil {
		return err
	}
	if resp.Attachment.SocketPath != "" {
		hostSocket = resp.Attachment.SocketPath
	}

	ci := containerInterface(conf, key)
	adoptHostQueues(&ci, resp.Attachment.Interface)
	devInfo := contracts.NewDeviceInfo(ci)
	data := &contracts.PodData{
		Version: contracts.PodDataVersion, ContainerID: key.ContainerID, IfName: key.IfName,
		Network: conf.Name, Pod: conf.Pod, HostEngine: conf.Engine(), Interface: ci,
		IPAM: ipamResult(ipam), DeviceInfo: devInfo,
	}
	if err := poddata.WritePodData(paths, data, access); err != nil {
		return err
	}
	if devInfoFile != "" && devInfo != nil {
		if err := poddata.WriteJSON(devInfoFile, devInfo, 0o644); err != nil {
			return err
		}
	}

	result := cniResult(conf, key, inv.args.Netns, hostSocket, ipam)
	versioned, err := result.GetAsVersion(conf.CNIVersion)
	if err != nil {
		return contracts.Errorf(contracts.CodeIncompatibleVersion, "cniVersion %s: %v", conf.CNIVersion, err)
	}
	success = true
	return versioned.PrintTo(p.Stdout)
}

func (p *Plugin) undoIPAM(inv *invocation, key contracts.AttachmentKey) {
	ctx, cancel := context.WithTimeout(context.Background(), IPAMTimeout)
	defer cancel()
	if err := p.IPAM.Del(ctx, inv.conf.IPAM.Type, inv.args.StdinData, inv.ipamArgs(key)); err != nil {
		inv.log.Warn().Err(err).Msg("undo: cannot release IPAM")
	}
}

func (p *Plugin) undoAttach(inv *invocation) {
	if _, err := inv.detachRequest(inv.adapter, context.Background(), inv.conf.Engine()); err != nil {
		inv.log.Warn().Err(err).Str("subject", inv.subject(contracts.OpDetach)).Msg("undo: cannot detach; the adapter's GC will remove it")
	}
}
