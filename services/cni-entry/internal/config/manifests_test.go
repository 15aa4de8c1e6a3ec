package config_test

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/services/cni-entry/internal/config"
)

// deployDir holds the shipped manifests (deploy/k8s; its own test decodes
// them against the Kubernetes types).
const deployDir = "../../../../deploy/k8s"

// nadConfigs returns the spec.config of every NetworkAttachmentDefinition
// under dir, by file. The config is the "config: |" block scalar: the
// lines indented deeper than its key.
func nadConfigs(t *testing.T, dir string) map[string]string {
	t.Helper()
	key := regexp.MustCompile(`^(\s*)config: \|\s*$`)
	out := map[string]string{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".yaml") {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil || !strings.Contains(string(b), "kind: NetworkAttachmentDefinition") {
			return err
		}
		lines := strings.Split(string(b), "\n")
		for i, l := range lines {
			m := key.FindStringSubmatch(l)
			if m == nil {
				continue
			}
			var conf []string
			for _, c := range lines[i+1:] {
				if strings.TrimSpace(c) != "" && len(c)-len(strings.TrimLeft(c, " ")) <= len(m[1]) {
					break
				}
				conf = append(conf, c)
			}
			rel, _ := filepath.Rel(dir, p)
			require.NotContains(t, out, rel, "one NetworkAttachmentDefinition per file")
			out[rel] = strings.Join(conf, "\n")
		}
		return nil
	}))
	return out
}

// Every shipped network passes cni-entry's own validation, as Multus
// would call it: with the runtimeConfig its capabilities ask for.
func TestShippedNetworksLoad(t *testing.T) {
	confs := nadConfigs(t, deployDir)
	require.GreaterOrEqual(t, len(confs), 7, "the NADs of deploy/k8s")
	for file, raw := range confs {
		t.Run(file, func(t *testing.T) {
			var m map[string]any
			require.NoError(t, json.Unmarshal([]byte(raw), &m))
			caps, _ := m["capabilities"].(map[string]any)
			require.Equal(t, true, caps["CNIDeviceInfoFile"], "capabilities.CNIDeviceInfoFile")
			m["runtimeConfig"] = map[string]any{
				"CNIDeviceInfoFile": "/var/run/k8s.cni.cncf.io/devinfo/dp/net1-device.json",
				"ips":               []string{"10.56.0.10/24"},
			}
			stdin, err := json.Marshal(m)
			require.NoError(t, err)

			// LoadNetConf ignores unknown fields (old configs carry some);
			// a shipped NAD must not: a typo would be silently dropped.
			// ipam is the IPAM plugin's to check, runtimeConfig the runtime's.
			noIPAM := maps.Clone(m)
			delete(noIPAM, "ipam")
			delete(noIPAM, "runtimeConfig")
			b, err := json.Marshal(noIPAM)
			require.NoError(t, err)
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.DisallowUnknownFields()
			require.NoError(t, dec.Decode(&config.NetConf{}), "a field of spec.config that cni-entry does not know")

			conf, err := config.LoadNetConf(stdin, env)
			require.NoError(t, err)
			assert.Equal(t, "/var/run/k8s.cni.cncf.io/devinfo/dp/net1-device.json", conf.RuntimeConfig.CNIDeviceInfoFile)
			assert.Equal(t, "/etc/usrsp/nats/cni.creds", conf.NATS.CredentialsFile, "the node's cni@<node> credentials")
			assert.Equal(t, config.DefaultNATSURL, conf.NATS.URL, "the node's leaf on loopback")
		})
	}
}
