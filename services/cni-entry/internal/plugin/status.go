package plugin

import (
	"context"

	"github.com/containernetworking/cni/pkg/types"

	"usrsp.dev/contracts"
)

// status is CNI STATUS: the configured engine's adapter must answer and be
// ready, else code 50 (the plugin cannot attach anything: there is no
// "limited" mode worth 51). IPAM's STATUS is asked too when it has one.
func (p *Plugin) status(inv *invocation) error {
	conf := inv.conf
	st, err := call(p, inv, contracts.OpStatus, Adapter.Status)
	if err != nil {
		return notAvailable(err)
	}
	if !st.Ready {
		return contracts.Errorf(contracts.CodeNotAvailable, "the %s adapter on node %s is not ready: %s", conf.Engine(), inv.node, st.Message)
	}
	if conf.IPAM.Type == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), IPAMTimeout)
	defer cancel()
	err = p.IPAM.Status(ctx, conf.IPAM.Type, inv.args.StdinData, inv.ipamArgs(contracts.AttachmentKey{}))
	switch {
	case err == nil, unsupported(err):
		return nil
	case isCNICode(err, types.ErrPluginNotAvailable, types.ErrLimitedConnectivity):
		return err
	default:
		return notAvailable(err)
	}
}

// notAvailable turns a failure to reach or use a dependency into code 50,
// keeping its message.
func notAvailable(err error) error {
	return contracts.Errorf(contracts.CodeNotAvailable, "%v", err)
}
