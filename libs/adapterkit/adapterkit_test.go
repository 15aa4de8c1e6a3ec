package adapterkit_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/contracts"
	"usrsp.dev/contracts/contractstest"
	"usrsp.dev/contracts/service"
	"usrsp.dev/libs/adapterkit"
	"usrsp.dev/libs/adapterkit/overlay"
	"usrsp.dev/libs/natsauth"
	"usrsp.dev/libs/natsauth/natsauthtest"
	"usrsp.dev/libs/natstest"
	"usrsp.dev/libs/testkit"
)

var program = adapterkit.Program{Name: "test-adapter", Engine: contracts.EngineVPP, Version: "1.2.3", Vswitch: "VPP 25.10",
	StateDir: "/var/lib/usrsp/test", MetricsAddr: ":9999"}

func TestParse(t *testing.T) {
	t.Setenv("NATS_URL", "nats://env:4222")
	t.Setenv("NODE_NAME", "env-node")
	t.Setenv("VTEP", "10.0.0.1")
	t.Setenv("OVERLAY_INTERVAL", "2s")
	tests := []struct {
		name    string
		args    []string
		want    adapterkit.Config
		out     string
		wantErr error
	}{
		{name: "env and defaults", args: nil,
			want: adapterkit.Config{NATSURL: "nats://env:4222", Node: "env-node", StateDir: "/var/lib/usrsp/test", MetricsAddr: ":9999", PodDirs: defaultPodDirs,
				VTEP: "10.0.0.1", OverlayInterval: 2 * time.Second}},
		{name: "flags win", args: []string{"--nats-url", "nats://flag:4222", "--node", "n1", "--state-dir", "/s", "--metrics-addr", "", "--nats-creds", "/c",
			"--shared-dir", "/sh", "--link-dir", "/l", "--kubelet-pods-dir", "/k", "--vtep", "10.0.0.2", "--overlay-interval", "1m"},
			want: adapterkit.Config{NATSURL: "nats://flag:4222", NATSCreds: "/c", Node: "n1", StateDir: "/s",
				PodDirs: adapterkit.PodDirs{SharedDir: "/sh", LinkDir: "/l", KubeletPodsDir: "/k"}, VTEP: "10.0.0.2", OverlayInterval: time.Minute}},
		{name: "version", args: []string{"--version"}, out: "test-adapter 1.2.3 (vpp, contracts API v1, built and tested for VPP 25.10)\n", wantErr: adapterkit.ErrVersion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			cfg, err := program.Parse(flag.NewFlagSet("x", flag.ContinueOnError), tt.args, &out, io.Discard)
			if tt.wantErr != nil {
				require.True(t, errors.Is(err, tt.wantErr), "%v", err)
				assert.Equal(t, tt.out, out.String())
				return
			}
			require.NoError(t, err)
			cfg.Log = zerolog.Logger{}
			assert.Equal(t, tt.want, cfg)
		})
	}
	_, err := program.Parse(flag.NewFlagSet("x", flag.ContinueOnError), []string{"--log-level", "loud"}, io.Discard, io.Discard)
	assert.ErrorContains(t, err, "--log-level")
	t.Setenv("OVERLAY_INTERVAL", "often")
	_, err = program.Parse(flag.NewFlagSet("x", flag.ContinueOnError), nil, io.Discard, io.Discard)
	assert.ErrorContains(t, err, "OVERLAY_INTERVAL")
}

// start runs a Base on an embedded NATS with the HTTP endpoint on a free
// port; logs go to buf.
func start(t *testing.T, buf *bytes.Buffer) *adapterkit.Base {
	t.Helper()
	srv := natstest.Run(t)
	log, err := adapterkit.NewLogger(buf, "debug")
	require.NoError(t, err)
	b, err := adapterkit.Start(program, adapterkit.Config{NATSURL: srv.ClientURL(), Node: "n1", MetricsAddr: "127.0.0.1:0", Log: log})
	require.NoError(t, err)
	t.Cleanup(b.Close)
	return b
}

func get(t *testing.T, b *adapterkit.Base, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + b.HTTPAddr() + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestReadiness(t *testing.T) {
	b := start(t, &bytes.Buffer{})
	steps := []struct {
		do     func()
		code   int
		reason string
	}{
		{do: func() {}, code: 503, reason: "vswitch not connected: not connected yet"},
		{do: func() { b.VswitchUp(true, "") }, code: 503, reason: "desired state not reconciled"},
		{do: func() { b.Reconciled(time.Millisecond, errors.New("boom")) }, code: 503, reason: "reconcile failed: boom"},
		{do: func() { b.Reconciled(time.Millisecond, nil) }, code: 200, reason: "ready"},
		{do: func() { b.VswitchUp(true, "") }, code: 200, reason: "ready"}, // still up: no new reconcile needed
		{do: func() { b.VswitchUp(false, "socket gone") }, code: 503, reason: "vswitch not connected: socket gone"},
		{do: func() { b.VswitchUp(true, "") }, code: 503, reason: "not reconciled since the vswitch connected"},
		{do: func() { b.Reconciled(time.Millisecond, nil) }, code: 200, reason: "ready"},
		{do: func() { b.NC.Close() }, code: 503, reason: "NATS not connected"},
	}
	for i, s := range steps {
		s.do()
		code, body := get(t, b, "/readyz")
		assert.Equal(t, s.code, code, "step %d", i)
		assert.Contains(t, body, s.reason, "step %d", i)
	}
	code, body := get(t, b, "/healthz")
	assert.Equal(t, 200, code)
	assert.Equal(t, "ok\n", body)
}

func TestMetricsAndRequestLog(t *testing.T) {
	var logs bytes.Buffer
	b := start(t, &logs)
	k := contracts.AttachmentKey{ContainerID: "c1", IfName: "net1"}
	b.OnRequest(service.RequestInfo{Op: contracts.OpAttach, Subject: "s.attach", Key: &k, Duration: 3 * time.Millisecond})
	b.OnRequest(service.RequestInfo{Op: contracts.OpCheck, Subject: "s.check", Key: &k, Err: contracts.Errorf(contracts.CodeMismatch, "differs")})
	b.Metrics.SetAttachments(2)
	b.VswitchUp(true, "")
	b.Reconciled(5*time.Millisecond, nil)
	b.Metrics.CounterVec("extra_total", "An engine extra.", "kind").WithLabelValues("a").Inc()
	_, body := get(t, b, "/metrics")
	for _, want := range []string{
		`usrsp_adapter_request_duration_seconds_count{engine="vpp",op="attach"} 1`,
		`usrsp_adapter_request_errors_total{code="101",engine="vpp",op="check"} 1`,
		`usrsp_adapter_attachments{engine="vpp"} 2`,
		`usrsp_adapter_vswitch_connected{engine="vpp"} 1`,
		`usrsp_adapter_reconcile_duration_seconds_count{engine="vpp"} 1`,
		`usrsp_adapter_extra_total{engine="vpp",kind="a"} 1`,
		`go_goroutines`,
	} {
		assert.Contains(t, body, want)
	}
	for _, want := range []string{`"level":"info"`, `"engine":"vpp"`, `"node":"n1"`, `"container_id":"c1"`, `"ifname":"net1"`,
		`"subject":"s.attach"`, `"op":"attach"`, `"duration":3`, `"level":"warn"`, `"code":101`} {
		assert.Contains(t, logs.String(), want)
	}
}

// TestRequestLogLevels: changes at info, successful reads at debug (they
// are most of the traffic), every error at warn.
func TestRequestLogLevels(t *testing.T) {
	failed := contracts.Errorf(contracts.CodeNotFound, "attachment not found")
	tests := []struct {
		op    contracts.Op
		err   error
		level string
	}{
		{op: contracts.OpAttach, level: "info"},
		{op: contracts.OpDetach, level: "info"},
		{op: contracts.OpGC, level: "info"},
		{op: contracts.OpCheck, level: "debug"},
		{op: contracts.OpList, level: "debug"},
		{op: contracts.OpStatus, level: "debug"},
		{op: contracts.OpCheck, err: failed, level: "warn"},
		{op: contracts.OpAttach, err: failed, level: "warn"},
	}
	var logs bytes.Buffer
	b := start(t, &logs)
	for _, tt := range tests {
		t.Run(string(tt.op)+"/"+tt.level, func(t *testing.T) {
			logs.Reset()
			b.OnRequest(service.RequestInfo{Op: tt.op, Subject: "s." + string(tt.op), Err: tt.err})
			assert.Contains(t, logs.String(), `"level":"`+tt.level+`"`)
		})
	}
}

// TestServe: the service answers on NATS and every request goes through
// the kit's hook and the engine's.
func TestServe(t *testing.T) {
	var logs bytes.Buffer
	b := start(t, &logs)
	seen := make(chan contracts.Op, 1)
	require.NoError(t, b.Serve(stubAdapter{}, adapterkit.ServiceOptions{Description: "test",
		OnRequest: func(ri service.RequestInfo) { seen <- ri.Op }}))
	c := contracts.NewClient(b.NC, "n1", 5*time.Second)
	st, err := c.Status(context.Background(), contracts.EngineVPP)
	require.NoError(t, err)
	assert.True(t, st.Ready)
	assert.Equal(t, contracts.OpStatus, <-seen)
	assert.Contains(t, logs.String(), `"op":"status"`)
	assert.Contains(t, logs.String(), `"message":"serving"`)
}

func TestStartNeedsNode(t *testing.T) {
	_, err := adapterkit.Start(program, adapterkit.Config{})
	assert.Equal(t, contracts.CodeInvalidConfig, contracts.CodeOf(err))
}

func TestNilMetrics(t *testing.T) {
	var m *adapterkit.Metrics
	m.ObserveRequest(service.RequestInfo{Op: contracts.OpAttach})
	m.SetAttachments(1)
	m.SetVswitchConnected(true)
	m.ObserveReconcile(time.Second)
}

type stubAdapter struct{ contracts.Adapter }

func (stubAdapter) Status(context.Context, *contracts.StatusRequest) (*contracts.StatusResponse, error) {
	return &contracts.StatusResponse{Engine: contracts.EngineVPP, Ready: true}, nil
}

func TestParseNATSTLS(t *testing.T) {
	t.Setenv("NATS_TLS_CA", "/env/ca.pem")
	cfg, err := program.Parse(flag.NewFlagSet("x", flag.ContinueOnError),
		[]string{"--nats-tls-cert", "/c.pem", "--nats-tls-key", "/k.pem"}, io.Discard, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, contracts.TLSFiles{CAFile: "/env/ca.pem", CertFile: "/c.pem", KeyFile: "/k.pem"}, cfg.NATSTLS)
}

// TestSecuredNATS starts the kit against a nats-server secured as
// deployed (libs/natsauth identities, TLS with client certificates).
func TestSecuredNATS(t *testing.T) {
	const nodeA, nodeB = "node-a", "node-b.example"
	auth := natsauthtest.New(t)
	srv, tls := auth.StartTLSServer(t)
	dir := t.TempDir()
	creds := func(r natsauth.Role, node string) string {
		return auth.Creds(t, natsauth.Identity{Role: r, Name: node})
	}
	config := func(creds string, logs io.Writer) adapterkit.Config {
		log, err := adapterkit.NewLogger(logs, "debug")
		require.NoError(t, err)
		return adapterkit.Config{NATSURL: srv.ClientURL(), NATSCreds: creds, NATSTLS: tls, Node: nodeA, Log: log}
	}

	t.Run("adapter@A serves A's requests", func(t *testing.T) {
		logs := &testkit.Buffer{}
		b, err := adapterkit.Start(program, config(creds(natsauth.RoleAdapter, nodeA), logs))
		require.NoError(t, err)
		t.Cleanup(b.Close)
		require.NoError(t, b.Serve(contractstest.NewFakeAdapter(contracts.EngineVPP), adapterkit.ServiceOptions{}))

		nc, err := auth.Connect(t, srv.ClientURL(), tls, natsauth.Identity{Role: natsauth.RoleCNI, Name: nodeA}, contracts.RoleCNI)
		require.NoError(t, err)
		st, err := contracts.NewClient(nc, nodeA, 5*time.Second).Status(context.Background(), contracts.EngineVPP)
		require.NoError(t, err)
		assert.True(t, st.Ready)

		// What the credentials forbid is logged at error level.
		require.NoError(t, b.NC.Publish(contracts.EventSubject(nodeB, contracts.EngineVPP, contracts.EventAttached), nil))
		require.Eventually(t, func() bool { return strings.Contains(logs.String(), `"level":"error"`) }, 5*time.Second, 10*time.Millisecond)
		assert.Contains(t, logs.String(), "ermissions violation")
	})

	notCreds := filepath.Join(dir, "not.creds")
	require.NoError(t, os.WriteFile(notCreds, []byte("not a creds file"), 0o600))
	for _, tc := range []struct{ name, creds, want string }{
		{"cni@A", creds(natsauth.RoleCNI, nodeA), "credentials of cni@node-a, this daemon needs adapter@node-a"},
		{"adapter@B", creds(natsauth.RoleAdapter, nodeB), "credentials of adapter@node-b.example, this daemon needs adapter@node-a"},
		{"operator", creds(natsauth.RoleOperator, "ops"), "credentials of operator@ops"},
		{"not a creds file", notCreds, "--nats-creds"},
		{"missing file", filepath.Join(dir, "missing.creds"), "--nats-creds"},
	} {
		t.Run(tc.name+" refuses to start", func(t *testing.T) {
			start := time.Now()
			_, err := adapterkit.Start(program, config(tc.creds, io.Discard))
			require.Error(t, err)
			assert.Equal(t, contracts.CodeInvalidConfig, contracts.CodeOf(err))
			assert.Contains(t, err.Error(), tc.want)
			assert.Less(t, time.Since(start), time.Second, "refused before connecting")
		})
	}

	t.Run("client certificate without key", func(t *testing.T) {
		cfg := config(creds(natsauth.RoleAdapter, nodeA), io.Discard)
		cfg.NATSTLS.KeyFile = ""
		_, err := adapterkit.Start(program, cfg)
		assert.ErrorContains(t, err, "--nats-tls-cert and --nats-tls-key")
	})
}

// defaultPodDirs are cni-entry's and deploy/k8s's layout.
var defaultPodDirs = adapterkit.PodDirs{SharedDir: "/var/lib/cni/usrspcni", LinkDir: "/run/usrsp/l", KubeletPodsDir: "/var/lib/kubelet/pods"}

func TestPodDirsRoots(t *testing.T) {
	base := t.TempDir()
	own := filepath.Join(base, "state")
	require.NoError(t, os.Mkdir(own, 0o700))
	d := adapterkit.PodDirs{SharedDir: filepath.Join(base, "shared"), LinkDir: filepath.Join(base, "run", "l"), KubeletPodsDir: filepath.Join(base, "no-kubelet")}
	roots, err := d.Roots(own)
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{own, d.SharedDir, d.LinkDir}, roots.Dirs(), "shared and link dirs are made; a missing kubelet dir is left out")
	_, err = roots.PodSocket("interface.socketPath", filepath.Join(d.SharedDir, "pod", "s.sock"))
	require.NoError(t, err)
	_, err = roots.PodSocket("interface.socketPath", filepath.Join(own, "s.sock"))
	assert.Equal(t, contracts.CodeInvalidConfig, contracts.CodeOf(err), "the state dir holds no pod sockets")
}

type nopDataplane struct{}

func (nopDataplane) Members() ([]contracts.OverlayMember, error) { return nil, nil }
func (nopDataplane) SyncTunnels(context.Context, []overlay.Tunnel, bool) error {
	return nil
}

func TestNewOverlay(t *testing.T) {
	b := start(t, &bytes.Buffer{})
	tests := []struct {
		vtep, refused string // refused: "" when accepted
	}{
		{vtep: ""},
		{vtep: "10.0.0.1"},
		{vtep: "not-an-address", refused: "--vtep"},
		{vtep: "fd00::1", refused: "IPv4"},
	}
	for _, tt := range tests {
		t.Run(tt.vtep, func(t *testing.T) {
			b.Config.VTEP = tt.vtep
			m, err := b.NewOverlay(nopDataplane{})
			if tt.refused != "" {
				assert.Equal(t, contracts.CodeInvalidConfig, contracts.CodeOf(err))
				assert.ErrorContains(t, err, tt.refused)
				return
			}
			require.NoError(t, err)
			if tt.vtep == "" {
				assert.Nil(t, m, "no --vtep, no overlay")
				return
			}
			assert.Equal(t, netip.MustParseAddr(tt.vtep), m.VTEP())
		})
	}
}
