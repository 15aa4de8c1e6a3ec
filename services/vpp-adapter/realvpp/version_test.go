package realvpp_test

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.fd.io/govpp/api"
	"go.fd.io/govpp/binapi/memclnt"
	"go.fd.io/govpp/binapi/memif"
	"go.fd.io/govpp/binapi/vpe"
	"go.fd.io/govpp/codec"

	"usrsp.dev/contracts"
	"usrsp.dev/libs/vpp"
)

// TestRealVPPVersionMismatchIsExplained starts the adapter against a real
// VPP 25.10 seen through apiProxy, which makes it look like another release
// (one message with a CRC the adapter does not know, and optionally another
// version string), and checks that /readyz, status over NATS and an attach
// error name the version expected, the version found and the message.
func TestRealVPPVersionMismatchIsExplained(t *testing.T) {
	vppEnv(t)
	host := startVPP(t, "ver", 0)
	real, err := host.Client.Version(ctx(t))
	require.NoError(t, err)

	for _, tc := range []struct {
		name    string
		change  api.Message // the message whose CRC the "other" VPP has changed
		version string      // the version the proxy reports; "": VPP's own
		found   string      // what the surfaces must name as found
	}{
		{name: "memif_create_v2 changed in another release", change: &memif.MemifCreateV2{},
			version: "26.02-rc0~usrsp-proxy", found: "found VPP 26.02-rc0~usrsp-proxy"},
		{name: "memif_create_v2 changed, version as VPP reports it", change: &memif.MemifCreateV2{},
			found: "found VPP " + real},
		{name: "show_version changed: version unknown", change: &vpe.ShowVersionReply{},
			found: "found a VPP of unknown version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startAPIProxy(t, host, tc.change, tc.version)
			a := startAdapterOn(t, p.path)
			msg := tc.change.GetMessageName() + "_" + tc.change.GetCrcString()
			wants := []string{"built for VPP " + vpp.BuiltFor, tc.found, msg}

			reason := a.waitNotReady(t, "incompatible", 30*time.Second)
			t.Logf("readyz: %s", reason)

			code, body := a.Get(t, "/readyz")
			assert.Equal(t, http.StatusServiceUnavailable, code)
			st, err := a.Client.Status(ctx(t), contracts.EngineVPP)
			require.NoError(t, err)
			t.Logf("status: ready=%v vswitch=%q message=%q", st.Ready, st.Vswitch, st.Message)
			assert.False(t, st.Ready)
			_, attachErr := a.Client.Attach(ctx(t), contracts.EngineVPP, a.MemifRequest(contracts.AttachmentKey{ContainerID: "ver", IfName: "net1"}, "vpp-bridge", 4))
			require.Error(t, attachErr)
			t.Logf("attach: %v", attachErr)
			assert.Equal(t, contracts.CodeTryAgainLater, contracts.CodeOf(attachErr))
			for _, want := range wants {
				assert.Contains(t, body, want, "/readyz body")
				assert.Contains(t, st.Message, want, "status message")
				assert.Contains(t, attachErr.Error(), want, "attach error")
			}

			// VPP "upgraded" to the API the adapter knows: the adapter
			// reconnects on its own and becomes ready, no restart needed.
			p.honest.Store(true)
			start := time.Now()
			a.WaitReady(t, 30*time.Second)
			t.Logf("ready %s after VPP's API became compatible", time.Since(start).Round(time.Millisecond))
			st, err = a.Client.Status(ctx(t), contracts.EngineVPP)
			require.NoError(t, err)
			assert.True(t, st.Ready)
			assert.Equal(t, "VPP "+real, st.Vswitch)
		})
	}
}

// apiProxy sits between the adapter and VPP's binary API socket and makes
// VPP look like another release. govpp's socket protocol (adapter/
// socketclient) frames every message with a 16-byte header whose bytes
// 8..12 are the big-endian length; the first reply, sockclnt_create_reply,
// carries VPP's message table as fixed 64-byte "name_crc" strings, which is
// all a client knows of VPP's API. The proxy changes the CRC of one entry in
// place (same length), so that message looks changed, and can overwrite the
// version string of show_version_reply.
type apiProxy struct {
	path     string
	upstream string
	change   string // "name_crc" of the message to change
	version  string // "": leave show_version_reply alone
	// honest stops the rewriting for new connections (VPP "upgraded").
	honest atomic.Bool

	ln    *net.UnixListener
	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func startAPIProxy(t *testing.T, host *vppInstance, change api.Message, version string) *apiProxy {
	t.Helper()
	p := &apiProxy{path: filepath.Join(host.dir, "proxy.sock"), upstream: host.APISock,
		change: change.GetMessageName() + "_" + change.GetCrcString(), version: version}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: p.path, Net: "unix"})
	require.NoError(t, err)
	p.ln = ln
	p.wg.Add(1)
	go p.serve(t)
	t.Cleanup(p.close)
	return p
}

func (p *apiProxy) serve(t *testing.T) {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		u, err := net.Dial("unix", p.upstream)
		if err != nil {
			t.Logf("proxy: dial VPP: %v", err)
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, u)
		p.mu.Unlock()
		honest := p.honest.Load()
		p.wg.Add(2)
		go func() { defer p.wg.Done(); _, _ = io.Copy(u, c); _ = u.Close() }()
		go func() { defer p.wg.Done(); p.replies(t, u, c, honest); _ = c.Close() }()
	}
}

// replies copies VPP's messages to the client frame by frame, rewriting the
// message table of the first and the version of every show_version_reply.
func (p *apiProxy) replies(t *testing.T, from io.Reader, to io.Writer, honest bool) {
	var versionReply uint16 = 0xffff // message id of show_version_reply, from the table
	for first := true; ; first = false {
		hdr := make([]byte, 16)
		if _, err := io.ReadFull(from, hdr); err != nil {
			return
		}
		data := make([]byte, binary.BigEndian.Uint32(hdr[8:12]))
		if _, err := io.ReadFull(from, data); err != nil {
			return
		}
		if !honest && first {
			versionReply = p.rewriteTable(t, data)
		}
		// show_version_reply: msg id (2), context (4), retval (4),
		// program string[32], version string[32].
		if !honest && p.version != "" && len(data) >= 74 && binary.BigEndian.Uint16(data[0:2]) == versionReply {
			clear(data[42:74])
			copy(data[42:73], p.version)
		}
		if _, err := to.Write(append(hdr, data...)); err != nil {
			return
		}
	}
}

// rewriteTable changes p.change's CRC in sockclnt_create_reply data and
// returns the message id of show_version_reply.
func (p *apiProxy) rewriteTable(t *testing.T, data []byte) uint16 {
	var reply memclnt.SockclntCreateReply
	if err := codec.DefaultCodec.DecodeMsg(data, &reply); err != nil {
		t.Errorf("proxy: first VPP message is not sockclnt_create_reply: %v", err)
		return 0xffff
	}
	id := uint16(0xffff)
	wantReply := (&vpe.ShowVersionReply{}).GetMessageName() + "_" + (&vpe.ShowVersionReply{}).GetCrcString()
	for _, e := range reply.MessageTable {
		if e.Name == wantReply {
			id = e.Index
		}
	}
	i := bytes.Index(data, []byte(p.change+"\x00"))
	if i < 0 {
		t.Errorf("proxy: VPP's message table has no %s", p.change)
		return id
	}
	copy(data[i+len(p.change)-8:], "deadbeef") // the CRC: the last 8 hex digits
	t.Logf("proxy: VPP's %s is now %s_deadbeef", p.change, p.change[:len(p.change)-9])
	return id
}

func (p *apiProxy) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
