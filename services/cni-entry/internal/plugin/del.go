package plugin

import (
	"context"
	"errors"

	"usrsp.dev/contracts"
	"usrsp.dev/services/cni-entry/internal/poddata"
)

// del is CNI DEL. It is idempotent: anything already gone is success. It
// always releases IPAM and removes the pod's files, even when the adapter
// cannot be reached; it then returns that adapter error (code 11) so the
// runtime retries and the vswitch port does not leak until the next GC.
func (p *Plugin) del(inv *invocation) error {
	conf, key := inv.conf, inv.key
	var ipamErr, adapterErr, filesErr error

	if conf.IPAM.Type != "" {
		ctx, cancel := context.WithTimeout(context.Background(), IPAMTimeout)
		ipamErr = p.IPAM.Del(ctx, conf.IPAM.Type, inv.args.StdinData, inv.ipamArgs(key))
		cancel()
	}

	adapterErr = p.detach(inv)
	// After the detach, so the vswitch never holds a port whose netdev is
	// gone; also when the adapter is down: the pod loses its link now, the
	// port goes with the runtime's retry.
	var vethErr error
	if conf.Veth() {
		vethErr = inv.veth().Remove()
	}

	paths, err := poddata.Locate(inv.layout(), key, conf.Pod.UID, dirSocketFile(conf))
	switch {
	case err == nil:
		filesErr = poddata.Remove(paths, key)
	case contracts.CodeOf(err) == contracts.CodeInvalidEnv:
		// No pod UID and no link: ADD never got as far as the directory.
		inv.log.Debug().Err(err).Msg("no pod directory to clean")
	default:
		filesErr = err
	}
	filesErr = errors.Join(filesErr, poddata.RemoveFile(inv.deviceInfoFile(key)))

	// IPAM first: a leaked address blocks new pods; then the adapter.
	for _, err := range []error{ipamErr, adapterErr, vethErr, filesErr} {
		if err != nil {
			return err
		}
	}
	return nil
}

func (p *Plugin) detach(inv *invocation) error {
	resp, err := call(p, inv, contracts.OpDetach, inv.detachRequest)
	if contracts.IsNotFound(err) {
		return nil
	}
	if resp != nil {
		inv.log.Debug().Bool("removed", resp.Removed).Msg("detached")
	}
	return err
}

// detachRequest detaches this invocation's attachment.
func (inv *invocation) detachRequest(a Adapter, ctx context.Context, e contracts.Engine) (*contracts.DetachResponse, error) {
	return a.Detach(ctx, e, &contracts.DetachRequest{Key: inv.key, Network: inv.conf.Name})
}
