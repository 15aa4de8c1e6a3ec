package adapter

import (
	"net/http"

	"usrsp.dev/contracts"
	"usrsp.dev/contracts/service"
	"usrsp.dev/services/vpp-adapter/vpp"
)

// OnRequest logs, measures and publishes one served request; it is the
// service.Config.OnRequest hook.
func (a *Adapter) OnRequest(info service.RequestInfo) {
	a.cfg.Metrics.Observe(info)
	l := a.cfg.Log.With().Str("subject", info.Subject).
		Str("op", string(info.Op)).Dur("duration", info.Duration).Logger()
	if info.Key != nil {
		l = l.With().Str("container_id", info.Key.ContainerID).Str("ifname", info.Key.IfName).Logger()
	}
	ev := contracts.Event{Key: info.Key, Duration: info.Duration}
	switch {
	case info.Err != nil:
		l.Error().Err(info.Err).Uint("code", uint(contracts.CodeOf(info.Err))).Msg("request failed")
		ev.Kind, ev.Message = contracts.EventError, string(info.Op)+": "+info.Err.Error()
	case info.Op == contracts.OpAttach:
		l.Info().Msg("attached")
		ev.Kind = contracts.EventAttached
	case info.Op == contracts.OpDetach:
		l.Info().Msg("detached")
		ev.Kind = contracts.EventDetached
	default:
		l.Debug().Msg("served")
		return
	}
	a.publish(ev)
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
