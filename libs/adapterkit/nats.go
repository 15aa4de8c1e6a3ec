package adapterkit

import (
	"errors"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"usrsp.dev/contracts"
	"usrsp.dev/libs/natsauth"
)

// connectNATS connects as the node's adapter identity. With --nats-creds
// the credentials must be adapter@<--node> (libs/natsauth): any other
// identity would only meet permission violations, so the daemon refuses
// to start with a message that names the file. Replies to its own
// requests come to the adapter's inbox prefix, the only one it may read.
func connectNATS(p Program, cfg Config, log zerolog.Logger) (*nats.Conn, error) {
	o := contracts.ConnectOptions{URL: cfg.NATSURL, CredentialsFile: cfg.NATSCreds, TLS: cfg.NATSTLS,
		Name: "usrsp-" + p.Name + "/" + cfg.Node}
	if (cfg.NATSTLS.CertFile == "") != (cfg.NATSTLS.KeyFile == "") {
		return nil, contracts.Errorf(contracts.CodeInvalidConfig, "--nats-tls-cert and --nats-tls-key must be set together")
	}
	if cfg.NATSCreds != "" {
		id, err := natsauth.IdentityFromCreds(cfg.NATSCreds)
		if err != nil {
			return nil, contracts.Errorf(contracts.CodeInvalidConfig, "--nats-creds: %v", err)
		}
		if id.Role != natsauth.RoleAdapter || contracts.NodeToken(id.Name) != contracts.NodeToken(cfg.Node) {
			return nil, contracts.Errorf(contracts.CodeInvalidConfig,
				"--nats-creds %s are the credentials of %s, this daemon needs %s@%s (this node's adapter.creds)",
				cfg.NATSCreds, id.UserName(), natsauth.RoleAdapter, cfg.Node)
		}
		o.InboxPrefix = contracts.InboxPrefix(contracts.RoleAdapter, cfg.Node)
	}
	return contracts.ConnectService(o,
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { log.Warn().Err(err).Msg("NATS disconnected") }),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info().Str("url", nc.ConnectedUrl()).Msg("NATS reconnected") }),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			ev := log.Warn()
			if errors.Is(err, nats.ErrPermissionViolation) {
				ev = log.Error() // the credentials do not match what the daemon does
			}
			if sub != nil {
				ev = ev.Str("subject", sub.Subject)
			}
			ev.Err(err).Msg("NATS error")
		}))
}
