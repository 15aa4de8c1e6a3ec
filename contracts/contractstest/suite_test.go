package contractstest_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"usrsp.dev/contracts"
	"usrsp.dev/contracts/contractstest"
	"usrsp.dev/libs/natstest"
)

// FakeAdapter passes the conformance suite it is the model for.
func TestFakeAdapterPassesSuite(t *testing.T) {
	for _, e := range contracts.Engines {
		t.Run(string(e), func(t *testing.T) {
			srv := natstest.Run(t)
			nc := contractstest.Connect(t, srv.ClientURL())
			const node = "node-a"
			f := contractstest.NewFakeAdapter(e)
			f.Events = contracts.NewPublisher(nc, node, e)
			outer := t // the restarted service outlives the restart subtest
			svc := serve(outer, f, nc, node)
			dir := t.TempDir()
			contractstest.RunAdapterSuite(t, contractstest.Target{
				NC: nc, Node: node, Engine: e, Timeout: 5 * time.Second,
				Request: func(k contracts.AttachmentKey, network string) *contracts.AttachRequest {
					return &contracts.AttachRequest{Key: k, Network: network, Interface: contracts.HostInterface{
						IfType: contracts.IfTypeMemif, NetType: contracts.NetTypeBridge,
						SocketPath: filepath.Join(dir, k.ShortID()+".sock"),
						Memif:      &contracts.MemifSpec{Role: contracts.MemifRoleMaster, Mode: contracts.MemifModeEthernet, Queues: 1},
						Bridge:     &contracts.BridgeSpec{Name: "br-conf", ID: 7},
					}}
				},
				Conflicting: contractstest.OtherMemifID,
				Restart: func(t *testing.T) {
					// The fake's memory is its records: a new service
					// on the same state is a restart.
					if err := svc.Stop(); err != nil {
						t.Fatal(err)
					}
					svc = serve(outer, f, nc, node)
				},
				AssertClean: func(t *testing.T) {
					if n := len(f.Attachments()); n != 0 {
						t.Errorf("the fake still holds %d attachments", n)
					}
				},
			})
		})
	}
}

func serve(t *testing.T, f *contractstest.FakeAdapter, nc *nats.Conn, node string) micro.Service {
	t.Helper()
	svc, err := f.Serve(nc, node)
	if err != nil {
		t.Fatalf("serve the fake: %v", err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	return svc
}
