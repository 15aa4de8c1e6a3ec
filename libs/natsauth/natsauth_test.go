package natsauth_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/contracts"
	"usrsp.dev/contracts/contractstest"
	"usrsp.dev/libs/natsauth"
	"usrsp.dev/libs/natsauth/natsauthtest"
)

func allIdentities() []natsauth.Identity {
	var out []natsauth.Identity
	for _, n := range []string{nodeA, nodeB, "node", "a"} {
		for _, r := range natsauth.NodeRoles {
			out = append(out, natsauth.Identity{Role: r, Name: n})
		}
		out = append(out, natsauth.Identity{Role: natsauth.RoleOperator, Name: n})
	}
	return out
}

func TestInboxPrefixesAreDisjoint(t *testing.T) {
	ids := allIdentities()
	for i, id := range ids {
		p := id.InboxPrefix()
		require.Len(t, strings.Split(p, "."), 2, p)
		require.True(t, strings.HasPrefix(p, "_INBOX_"+string(id.Role)+"."), p)
		for _, other := range ids[i+1:] {
			q := other.InboxPrefix()
			require.False(t, strings.HasPrefix(q+".", p+".") || strings.HasPrefix(p+".", q+"."),
				"%s and %s overlap", p, q)
		}
	}
}

func TestPermissionsNeverGrantEveryInbox(t *testing.T) {
	for _, id := range allIdentities() {
		p := id.Permissions()
		for _, s := range append(p.Sub.Allow, p.Pub.Allow...) {
			assert.NotContains(t, []string{">", "_INBOX.>", "_INBOX.*", "usrsp.>", "usrsp.v1.>"}, s, id.UserName())
		}
		// The only inboxes anyone may read are its own (a leaf: its node's).
		own := []string{id.InboxPrefix() + ".>"}
		if id.Role == natsauth.RoleLeaf {
			own = []string{
				natsauth.Identity{Role: natsauth.RoleCNI, Name: id.Name}.InboxPrefix() + ".>",
				natsauth.Identity{Role: natsauth.RoleAdapter, Name: id.Name}.InboxPrefix() + ".>",
			}
		}
		for _, s := range p.Sub.Allow {
			if strings.HasPrefix(s, "_INBOX") {
				assert.Contains(t, own, s, id.UserName())
			}
		}
		assert.Empty(t, p.Pub.Deny, "allow lists only")
		assert.Empty(t, p.Sub.Deny, "allow lists only")
		var vr jwt.ValidationResults
		p.Validate(&vr)
		assert.Empty(t, vr.Errors(), id.UserName())
	}
}

func TestLeafIsUnionOfItsNode(t *testing.T) {
	leaf := leafA.Permissions()
	for _, id := range []natsauth.Identity{cniA, adapterA} {
		p := id.Permissions()
		assert.Subset(t, leaf.Pub.Allow, p.Pub.Allow, id.UserName())
		assert.Subset(t, leaf.Sub.Allow, p.Sub.Allow, id.UserName())
	}
	for _, s := range append(leaf.Pub.Allow, leaf.Sub.Allow...) {
		assert.NotContains(t, s, contracts.NodeToken(nodeB))
	}
}

func TestIdentityValidate(t *testing.T) {
	tests := []struct {
		id      natsauth.Identity
		wantErr string
	}{
		{natsauth.Identity{Role: natsauth.RoleCNI, Name: "worker-1.example.com"}, ""},
		{natsauth.Identity{Role: "admin", Name: "n"}, "role"},
		{natsauth.Identity{Role: natsauth.RoleCNI, Name: ""}, "name"},
		{natsauth.Identity{Role: natsauth.RoleCNI, Name: "Node"}, "name"},
		{natsauth.Identity{Role: natsauth.RoleCNI, Name: "a_b"}, "name"},
		{natsauth.Identity{Role: natsauth.RoleCNI, Name: "a.*"}, "name"},
		{natsauth.Identity{Role: natsauth.RoleCNI, Name: "a>"}, "name"},
		{natsauth.Identity{Role: natsauth.RoleCNI, Name: "a b"}, "name"},
		{natsauth.Identity{Role: natsauth.RoleCNI, Name: "-a"}, "name"},
		{natsauth.Identity{Role: natsauth.RoleCNI, Name: strings.Repeat("a", 254)}, "name"},
	}
	for _, tt := range tests {
		t.Run(tt.id.UserName(), func(t *testing.T) {
			err := tt.id.Validate()
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

func TestMintedCreds(t *testing.T) {
	f := newFixture(t)
	path := f.Creds(t, adapterB)
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())

	id, err := natsauth.IdentityFromCreds(path)
	require.NoError(t, err)
	assert.Equal(t, adapterB, id)

	b, err := os.ReadFile(path)
	require.NoError(t, err)
	tok, err := jwt.ParseDecoratedJWT(b)
	require.NoError(t, err)
	uc, err := jwt.DecodeUserClaims(tok)
	require.NoError(t, err)
	assert.Equal(t, f.Auth.AccountPublicKey(), uc.IssuerAccount)
	signer, _ := f.Auth.Signer.PublicKey()
	assert.Equal(t, signer, uc.Issuer, "signed by the account signing key")
	assert.Equal(t, adapterB.Permissions(), uc.Permissions)
	assert.NotZero(t, uc.Expires)

	_, _, err = f.Auth.Mint(natsauth.Identity{Role: natsauth.RoleCNI, Name: "Bad_Name"}, 0)
	require.Error(t, err)
}

func TestAuthoritySaveLoad(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	dir := filepath.Join(t.TempDir(), "authority")
	require.NoError(t, f.Auth.Save(dir))
	require.ErrorContains(t, f.Auth.Save(dir), "refusing to overwrite")
	st, err := os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), st.Mode().Perm())
	seeds, err := filepath.Glob(filepath.Join(dir, "*.nk"))
	require.NoError(t, err)
	require.Len(t, seeds, 4)
	for _, s := range seeds {
		st, err := os.Stat(s)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), st.Mode().Perm(), s)
	}
	got, err := natsauth.LoadAuthority(dir)
	require.NoError(t, err)
	assert.Equal(t, f.Auth.AccountJWT, got.AccountJWT)
	assert.Equal(t, f.Auth.ServerConfig(natsauth.ServerConfig{}), got.ServerConfig(natsauth.ServerConfig{}))

	// Creds minted by the loaded authority work on a server of the original.
	srv := startConfig(t, f.Auth.ServerConfig(natsauth.ServerConfig{}))
	creds, _, err := got.Mint(cniA, 0)
	require.NoError(t, err)
	p := filepath.Join(t.TempDir(), "c.creds")
	require.NoError(t, natsauth.WriteCreds(p, creds))
	dial(t, srv.ClientURL(), p)
}

// selfSigned forges creds: a user JWT with no permission limits, signed
// by key (not the account signing key), with userKey's seed. The jwt
// library refuses to sign or decode a user issued by a user key, so it
// is built by hand: the test is that the server refuses it too.
func selfSigned(t *testing.T, key, userKey nkeys.KeyPair, issuerAccount string) []byte {
	t.Helper()
	pub, _ := userKey.PublicKey()
	iss, _ := key.PublicKey()
	uc := jwt.NewUserClaims(pub)
	uc.Name = "cni@node-a"
	uc.IssuerAccount = issuerAccount
	uc.Issuer = iss
	uc.IssuedAt = time.Now().Unix()
	uc.ID = "forged"
	uc.Type, uc.Version = jwt.UserClaim, 2 // what Encode sets
	payload, err := json.Marshal(uc)
	require.NoError(t, err)
	enc := base64.RawURLEncoding
	signed := enc.EncodeToString([]byte(`{"typ":"JWT","alg":"ed25519-nkey"}`)) + "." + enc.EncodeToString(payload)
	sig, err := key.Sign([]byte(signed))
	require.NoError(t, err)
	seed, _ := userKey.Seed()
	// jwt.FormatUserConfig would refuse it too; write the .creds format by hand.
	return fmt.Appendf(nil, "-----BEGIN NATS USER JWT-----\n%s.%s\n------END NATS USER JWT------\n\n"+
		"-----BEGIN USER NKEY SEED-----\n%s\n------END USER NKEY SEED------\n", signed, enc.EncodeToString(sig), seed)
}

func TestServerRejects(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	srv := startConfig(t, f.Auth.ServerConfig(natsauth.ServerConfig{}))
	url := srv.ClientURL()

	// A node's own user key: what a compromised node holds.
	b, err := os.ReadFile(f.Creds(t, cniA))
	require.NoError(t, err)
	nodeKey, err := jwt.ParseDecoratedNKey(b)
	require.NoError(t, err)
	other, err := natsauth.NewAuthority("rogue")
	require.NoError(t, err)
	otherCreds, _, err := other.Mint(cniA, 0)
	require.NoError(t, err)
	revokedCreds, revokedPub, err := f.Auth.Mint(cniB, 0)
	require.NoError(t, err)

	write := func(name string, b []byte) string {
		p := filepath.Join(t.TempDir(), name)
		require.NoError(t, os.WriteFile(p, b, 0o600))
		return p
	}
	tests := []struct {
		name  string
		creds string
		url   string
	}{
		{"no credentials", "", url},
		{"leaf credentials used by a client", f.Creds(t, leafA), url},
		{"creds of another authority", write("other.creds", otherCreds), url},
		{"a node's user key minting a user for itself", write("self.creds", selfSigned(t, nodeKey, nodeKey, f.Auth.AccountPublicKey())), url},
		{"a node's user key minting another user", write("minted.creds", selfSigned(t, nodeKey, mustUser(t), f.Auth.AccountPublicKey())), url},
		{"a user claiming the account without a signing key", write("acct.creds", selfSigned(t, mustUser(t), mustUser(t), "")), url},
	}
	// A server whose account JWT revokes cni B's first creds.
	revoking := *f.Auth
	require.NoError(t, revoking.ReissueAccount([]string{revokedPub}))
	srv2 := startConfig(t, revoking.ServerConfig(natsauth.ServerConfig{}))
	tests = append(tests, struct {
		name  string
		creds string
		url   string
	}{"revoked creds", write("revoked.creds", revokedCreds), srv2.ClientURL()})

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := tryDial(tt.url, "", credsOption(tt.creds)...)
			if err == nil {
				c.nc.Close()
			}
			require.Error(t, err)
			assert.Contains(t, strings.ToLower(err.Error()), "authorization violation")
		})
	}
	// Positive control: the same servers accept the real creds.
	dial(t, url, f.Creds(t, cniA))
	dial(t, srv2.ClientURL(), f.Creds(t, cniA))
}

func mustUser(t *testing.T) nkeys.KeyPair {
	t.Helper()
	kp, err := nkeys.CreateUser()
	require.NoError(t, err)
	return kp
}

// TestContractsClient is the wiring as cni-entry and the adapters use it:
// contracts.Connect with a node identity's .creds, the inbox prefix
// derived by contracts.InboxPrefix (no JWT parsing) and TLS.
func TestContractsClient(t *testing.T) {
	env := natsauthtest.New(t)
	srv, tls := env.StartTLSServer(t)
	connect := func(id natsauth.Identity, inboxRole string) (*nats.Conn, error) {
		return env.Connect(t, srv.ClientURL(), tls, id, inboxRole)
	}

	adapter, err := connect(adapterA, contracts.RoleAdapter)
	require.NoError(t, err)
	fake := contractstest.NewFakeAdapter(contracts.EngineVPP)
	svc, err := fake.Serve(adapter, nodeA)
	require.NoError(t, err)
	t.Cleanup(func() { _ = svc.Stop() })

	const timeout = 5 * time.Second
	cni, err := connect(cniA, contracts.RoleCNI)
	require.NoError(t, err)
	t.Run("cni@A drives A's adapter", func(t *testing.T) {
		c := contracts.NewClient(cni, nodeA, timeout)
		st, err := c.Status(context.Background(), contracts.EngineVPP)
		require.NoError(t, err)
		assert.True(t, st.Ready)
		_, err = c.List(context.Background(), contracts.EngineVPP, &contracts.ListRequest{})
		require.NoError(t, err)
	})

	for _, tc := range []struct {
		name      string
		id        natsauth.Identity
		inboxRole string
		node      string
	}{
		{"cni@A to node B", cniA, contracts.RoleCNI, nodeB},
		{"cni@B to node A", cniB, contracts.RoleCNI, nodeA},
		{"cni@A with the adapter's inbox", cniA, contracts.RoleAdapter, nodeA},
		{"operator attaching", operatorO, "operator", nodeA},
	} {
		t.Run(tc.name+" is denied at once", func(t *testing.T) {
			c, err := connect(tc.id, tc.inboxRole)
			require.NoError(t, err)
			start := time.Now()
			_, err = contracts.NewClient(c, tc.node, timeout).Status(context.Background(), contracts.EngineVPP)
			require.Error(t, err)
			assert.Equal(t, contracts.CodeInvalidConfig, contracts.CodeOf(err), "%v", err)
			assert.Contains(t, err.Error(), "nats.credentialsFile")
			assert.Less(t, time.Since(start), timeout/2)
		})
	}
	// cni@A's requests, the one with a wrong inbox too (its reply is what
	// is denied); none from cni@B or the operator.
	assert.Equal(t, []contracts.Op{contracts.OpStatus, contracts.OpList, contracts.OpStatus}, fake.Calls())

	t.Run("TLS: a server of another CA is refused", func(t *testing.T) {
		wrong := natsauthtest.NewCA(t, t.TempDir(), "wrong")
		_, err := contracts.Connect(contracts.ConnectOptions{URL: srv.ClientURL(), CredentialsFile: env.Creds(t, cniA),
			TLS: contracts.TLSFiles{CAFile: wrong.File}, Timeout: 2 * time.Second})
		require.Error(t, err)
		assert.Equal(t, contracts.CodeTryAgainLater, contracts.CodeOf(err))
	})
}

func TestTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca, wrong := natsauthtest.NewCA(t, dir, "usrsp"), natsauthtest.NewCA(t, dir, "wrong")
	srvCert, srvKey := ca.Issue(t, "server", true)
	cliCert, cliKey := ca.Issue(t, "client", false)
	wrongCert, wrongKey := wrong.Issue(t, "intruder", false)
	f := newFixture(t)
	creds := f.Creds(t, cniA)

	verifyOnly := startConfig(t, f.Auth.ServerConfig(natsauth.ServerConfig{
		TLS: &natsauth.TLS{CertFile: srvCert, KeyFile: srvKey},
	}))
	mutual := startConfig(t, f.Auth.ServerConfig(natsauth.ServerConfig{
		TLS: &natsauth.TLS{CertFile: srvCert, KeyFile: srvKey, CAFile: ca.File},
	}))
	tlsURL := func(s *server.Server) string { return strings.Replace(s.ClientURL(), "nats://", "tls://", 1) }

	tests := []struct {
		name    string
		srv     *server.Server
		tls     natsauth.TLS
		wantErr string
	}{
		{"server verified", verifyOnly, natsauth.TLS{CAFile: ca.File}, ""},
		{"server signed by another CA", verifyOnly, natsauth.TLS{CAFile: wrong.File}, "certificate signed by unknown authority"},
		{"mutual: client certificate", mutual, natsauth.TLS{CAFile: ca.File, CertFile: cliCert, KeyFile: cliKey}, ""},
		{"mutual: no client certificate", mutual, natsauth.TLS{CAFile: ca.File}, "tls"},
		{"mutual: client certificate of another CA", mutual, natsauth.TLS{CAFile: ca.File, CertFile: wrongCert, KeyFile: wrongKey}, "tls"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts, err := natsauth.ClientOptions(creds, &tt.tls)
			require.NoError(t, err)
			nc, err := nats.Connect(tlsURL(tt.srv), append(opts, nats.Timeout(2*time.Second), nats.NoReconnect())...)
			if tt.wantErr == "" {
				require.NoError(t, err)
				defer nc.Close()
				require.NoError(t, nc.Flush())
				require.True(t, nc.TLSRequired())
				return
			}
			if err == nil {
				// With TLS 1.3 the server rejects a client certificate after the
				// handshake: the connection closes ("tls error").
				err = nc.Flush()
				nc.Close()
			}
			require.Error(t, err)
			require.Contains(t, err.Error(), tt.wantErr)
		})
	}

	t.Run("leaf over mutual TLS", func(t *testing.T) {
		hubLeaf := freeAddr(t)
		hub := startConfig(t, f.Auth.ServerConfig(natsauth.ServerConfig{
			LeafListen: hubLeaf, TLS: &natsauth.TLS{CertFile: srvCert, KeyFile: srvKey, CAFile: ca.File},
		}))
		leaf := startConfig(t, f.Auth.LeafConfig(natsauth.LeafConfig{
			HubURLs: []string{"nats-leaf://" + hubLeaf}, CredsFile: f.Creds(t, leafA),
			TLS: &natsauth.TLS{CAFile: ca.File, CertFile: cliCert, KeyFile: cliKey},
		}))
		require.Eventually(t, func() bool { return hub.NumLeafNodes() == 1 && leaf.NumLeafNodes() == 1 },
			5*time.Second, 10*time.Millisecond)
	})
}

func TestTLSValidate(t *testing.T) {
	dir := t.TempDir()
	ca := natsauthtest.NewCA(t, dir, "usrsp")
	cert, key := ca.Issue(t, "c", false)
	tests := []struct {
		name    string
		tls     natsauth.TLS
		wantErr string
	}{
		{"client without CA", natsauth.TLS{CertFile: cert, KeyFile: key}, "caFile is required"},
		{"cert without key", natsauth.TLS{CAFile: ca.File, CertFile: cert}, "together"},
		{"missing CA file", natsauth.TLS{CAFile: filepath.Join(dir, "nope.pem")}, "nope.pem"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.tls.ClientOptions()
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
	_, err := natsauth.TLS{CAFile: ca.File}.ServerTLSConfig()
	require.ErrorContains(t, err, "certFile and keyFile")
	cfg, err := natsauth.TLS{CAFile: ca.File, CertFile: cert, KeyFile: key}.ServerTLSConfig()
	require.NoError(t, err)
	require.NotNil(t, cfg.ClientCAs)
}
