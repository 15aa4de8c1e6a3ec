package adapter

import (
	"fmt"
	"net/http"
	"strings"

	"usrsp.dev/contracts"
	"usrsp.dev/contracts/service"
	"usrsp.dev/libs/vpp"
)

// OnRequest logs and measures one served request; it is the
// service.Config.OnRequest hook. Attach, Detach, Check and GC publish
// their own events (they know the network and what VPP got); here only
// the failures of the other operations become error events.
func (a *Adapter) OnRequest(info service.RequestInfo) {
	a.cfg.Metrics.Observe(info)
	l := a.cfg.Log.With().Str("subject", info.Subject).
		Str("op", string(info.Op)).Dur("duration", info.Duration).Logger()
	if info.Key != nil {
		l = l.With().Str("container_id", info.Key.ContainerID).Str("ifname", info.Key.IfName).Logger()
	}
	switch {
	case info.Err != nil:
		l.Error().Err(info.Err).Uint("code", uint(contracts.CodeOf(info.Err))).Msg("request failed")
		if info.Op == contracts.OpList || info.Op == contracts.OpStatus {
			a.publish(contracts.Event{Kind: contracts.EventError, Key: info.Key, Duration: info.Duration,
				Message: string(info.Op) + ": " + info.Err.Error()})
		}
	case info.Op == contracts.OpAttach:
		l.Info().Msg("attached")
	case info.Op == contracts.OpDetach:
		l.Info().Msg("detached")
	default:
		l.Debug().Msg("served")
	}
}

// describe says in words what attachment att is on VPP, for event
// messages, e.g. "memif1/0 (memif master) in bridge domain 4, access port
// of VLAN 100" or "vhost-user server VirtualEthernet0/0/0 in bridge domain 4".
func describe(att contracts.Attachment) string {
	h := att.Interface
	name := att.HostIfName
	if name == "" {
		name = "the interface tagged " + Tag(att.Key)
	}
	var b strings.Builder
	switch {
	case h.IfType == contracts.IfTypeMemif && h.Memif != nil:
		fmt.Fprintf(&b, "%s (memif %s", name, h.Memif.Role)
		if h.Memif.Mode != "" && h.Memif.Mode != contracts.MemifModeEthernet {
			fmt.Fprintf(&b, ", %s mode", h.Memif.Mode)
		}
		fmt.Fprintf(&b, ") on %s", att.SocketPath)
	case h.IfType == contracts.IfTypeVhostUser && h.Vhost != nil:
		fmt.Fprintf(&b, "vhost-user %s %s on %s", h.Vhost.Mode, name, att.SocketPath)
	default:
		fmt.Fprintf(&b, "%s (%s)", name, h.IfType)
	}
	switch {
	case h.NetType == contracts.NetTypeBridge && h.Bridge != nil:
		fmt.Fprintf(&b, " in bridge domain %d", h.Bridge.ID)
		if h.Bridge.VLAN != 0 {
			fmt.Fprintf(&b, ", access port of VLAN %d", h.Bridge.VLAN)
		}
	case h.NetType == contracts.NetTypeInterface:
		addrs := make([]string, 0, len(h.IPs))
		for _, ip := range h.IPs {
			addrs = append(addrs, ip.Address)
		}
		fmt.Fprintf(&b, ", routed to %s", strings.Join(addrs, " "))
	default:
		fmt.Fprintf(&b, ", netType %s", h.NetType)
	}
	if h.MTU != 0 {
		fmt.Fprintf(&b, ", MTU %d", h.MTU)
	}
	return b.String()
}

// HealthHandler serves /healthz (the process answers), /readyz (VPP is
// connected and the desired state replayed) and /metrics.
func (a *Adapter) HealthHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if ok, why := a.Ready(); !ok {
			http.Error(w, "not ready: "+why, http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	if a.cfg.Metrics != nil {
		mux.Handle("/metrics", a.cfg.Metrics.Handler())
	}
	return mux
}

// ServiceConfig is the micro service configuration of the adapter on node:
// its version and metadata name the VPP release it is built for.
func (a *Adapter) ServiceConfig(node string) service.Config {
	return service.Config{
		Node: node, Engine: contracts.EngineVPP, Version: Version,
		Description: "usrsp VPP adapter (memif, vhost-user) for VPP " + vpp.BuiltFor,
		Metadata:    map[string]string{"vpp-version": vpp.BuiltFor},
		OnRequest:   a.OnRequest,
	}
}
