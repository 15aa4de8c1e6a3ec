package discovery

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/contracts"
)

func podData(ifName string) *contracts.PodData {
	return &contracts.PodData{Version: contracts.PodDataVersion, ContainerID: "abc123", IfName: ifName, Network: "memif-net",
		HostEngine: contracts.EngineVPP,
		Interface: contracts.ContainerInterface{IfType: contracts.IfTypeMemif, NetType: contracts.NetTypeBridge,
			SocketPath: "/var/run/usrsp/memif-" + ifName + ".sock",
			Memif:      &contracts.MemifSpec{Role: contracts.MemifRoleSlave, Mode: contracts.MemifModeEthernet, Queues: 1}},
		IPAM: &contracts.IPAMResult{IPs: []contracts.IPConfig{{Address: "10.56.0.5/24"}}}}
}

func writeJSON(t *testing.T, dir, name string, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, b, 0o600))
	return p
}

func TestLoadDir(t *testing.T) {
	cases := []struct {
		name  string
		files map[string]any
		want  []string
		err   string
	}{
		{name: "no files", want: []string{}},
		{name: "one file", files: map[string]any{"usrsp-net1.json": podData("net1")}, want: []string{"net1"}},
		{name: "two files, sorted", files: map[string]any{"usrsp-net2.json": podData("net2"), "usrsp-net1.json": podData("net1"),
			"other.json": "ignored"}, want: []string{"net1", "net2"}},
		{name: "not JSON", files: map[string]any{"usrsp-net1.json": json.RawMessage(`{"version":`)}, err: "usrsp-net1.json"},
		{name: "wrong version", files: map[string]any{"usrsp-net1.json": func() any { d := podData("net1"); d.Version = "v0"; return d }()},
			err: `usrsp-net1.json: pod data: version "v0"`},
		{name: "file name and ifName differ", files: map[string]any{"usrsp-net1.json": podData("net2")},
			err: `describes interface "net2", whose file is usrsp-net2.json`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, v := range tc.files {
				if raw, ok := v.(json.RawMessage); ok {
					require.NoError(t, os.WriteFile(filepath.Join(dir, name), raw, 0o600))
					continue
				}
				writeJSON(t, dir, name, v)
			}
			ifs, err := LoadDir(dir)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), filepath.Join(dir, ""), "the error names the file")
				assert.Contains(t, err.Error(), tc.err)
				assert.Equal(t, contracts.CodeDecode, contracts.CodeOf(err))
				return
			}
			require.NoError(t, err)
			names := []string{}
			for _, i := range ifs {
				names = append(names, i.Name)
				assert.Equal(t, filepath.Join(dir, contracts.PodDataFileName(i.Name)), i.File)
			}
			assert.Equal(t, tc.want, names)
		})
	}
	ifs, err := LoadDir(filepath.Join(t.TempDir(), "missing"))
	require.NoError(t, err, "a missing directory means no interfaces yet")
	assert.Empty(t, ifs)

	_, err = LoadDir(filepath.Join(writeJSON(t, t.TempDir(), "usrsp-net1.json", podData("net1")), "x"))
	require.Error(t, err, "a file where the directory should be is not an empty directory")
	assert.Equal(t, contracts.CodeIO, contracts.CodeOf(err))
}

const networkStatus = `[{"name":"cbr0","interface":"eth0","ips":["10.244.1.5"],"mac":"aa:bb:cc:dd:ee:ff","default":true,"dns":{}},
 {"name":"default/memif-net","interface":"net1","ips":["10.56.0.5"],"mac":"02:00:00:00:00:01","dns":{},
  "device-info":{"type":"memif","version":"1.1.0","memif":{"role":"slave","path":"/var/run/usrsp/memif-net1.sock","mode":"ethernet"}}},
 {"name":"default/vhost-net","interface":"net2","dns":{},
  "device-info":{"type":"vhost-user","version":"1.1.0","vhost-user":{"mode":"server","path":"/var/run/usrsp/vhostuser-net2.sock"}}}]`

// annotationsFile renders annotations the way kubelet's downward API does.
func annotationsFile(kv ...string) []byte {
	var b []byte
	for i := 0; i+1 < len(kv); i += 2 {
		b = append(b, kv[i]+"="+strconv.Quote(kv[i+1])+"\n"...)
	}
	return b
}

func TestParseAnnotations(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want map[string]string
		err  string
	}{
		{"empty", "", map[string]string{}, ""},
		{"kubelet format", string(annotationsFile("a", "1", "k8s.v1.cni.cncf.io/networks", "memif-net", "multi", "x\ny\"z")),
			map[string]string{"a": "1", "k8s.v1.cni.cncf.io/networks": "memif-net", "multi": "x\ny\"z"}, ""},
		{"blank lines", "\n a=\"1\" \n\n", map[string]string{"a": "1"}, ""},
		{"no equals", "a\n", nil, "annotations line 1"},
		{"unquoted", "a=\"1\"\nb=2\n", nil, "annotations line 2 (b)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseAnnotations([]byte(tc.in))
			if tc.err != "" {
				assert.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestDiscoverMergesNetworkStatus(t *testing.T) {
	dir := t.TempDir()
	writeJSON(t, dir, "usrsp-net1.json", podData("net1"))
	ann := filepath.Join(t.TempDir(), "annotations")
	require.NoError(t, os.WriteFile(ann, annotationsFile("other", "x", NetworkStatusKey, networkStatus), 0o600))

	ifs, err := Discover(dir, ann)
	require.NoError(t, err)
	require.Len(t, ifs, 2, "net1 from pod data (merged), net2 from the annotation only; eth0 ignored")
	assert.Equal(t, "net1", ifs[0].Name)
	require.NotNil(t, ifs[0].Status)
	assert.Equal(t, "default/memif-net", ifs[0].Status.Name)
	assert.Equal(t, "slave", ifs[0].Status.DeviceInfo.Memif.Role)
	assert.NotNil(t, ifs[0].Data)

	assert.Equal(t, "net2", ifs[1].Name)
	assert.Nil(t, ifs[1].Data)
	di := ifs[1].DeviceInfo()
	require.NotNil(t, di)
	assert.Equal(t, "/var/run/usrsp/vhostuser-net2.sock", di.VhostUser.Path)

	t.Run("missing annotations file is fine", func(t *testing.T) {
		ifs, err := Discover(dir, filepath.Join(t.TempDir(), "none"))
		require.NoError(t, err)
		assert.Len(t, ifs, 1)
	})
	t.Run("bad network-status names the file and key", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), "annotations")
		require.NoError(t, os.WriteFile(bad, annotationsFile(NetworkStatusKey, "[{"), 0o600))
		_, err := Discover(dir, bad)
		assert.ErrorContains(t, err, bad)
		assert.ErrorContains(t, err, NetworkStatusKey)
	})
}

func FuzzParseAnnotations(f *testing.F) {
	f.Add(annotationsFile(NetworkStatusKey, networkStatus))
	f.Add([]byte("a=\"1\"\nb"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseAnnotations(b)
		if err != nil {
			return
		}
		var kv []string
		for k, v := range m {
			kv = append(kv, k, v)
		}
		again, err := ParseAnnotations(annotationsFile(kv...))
		if err == nil && len(again) != len(m) {
			t.Fatalf("round trip lost keys: %v vs %v", m, again)
		}
	})
}
