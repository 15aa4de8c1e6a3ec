package k8s_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// repo is the repository root, relative to this package.
const repo = "../.."

// Kustomization is the part of kustomize's file this repository uses;
// anything else in one is an error (strict decoding).
type Kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Namespace  string   `json:"namespace,omitempty"`
	Resources  []string `json:"resources"`
}

// NAD is a NetworkAttachmentDefinition (k8s.cni.cncf.io/v1).
type NAD struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name   string            `json:"name"`
		Labels map[string]string `json:"labels,omitempty"`
	} `json:"metadata"`
	Spec struct {
		Config string `json:"config"`
	} `json:"spec"`
}

// kinds maps apiVersion/kind to the Go type a document must decode into.
var kinds = map[string]func() any{
	"v1/Namespace":                  func() any { return &corev1.Namespace{} },
	"v1/Service":                    func() any { return &corev1.Service{} },
	"v1/ConfigMap":                  func() any { return &corev1.ConfigMap{} },
	"v1/Pod":                        func() any { return &corev1.Pod{} },
	"apps/v1/DaemonSet":             func() any { return &appsv1.DaemonSet{} },
	"apps/v1/StatefulSet":           func() any { return &appsv1.StatefulSet{} },
	"policy/v1/PodDisruptionBudget": func() any { return &policyv1.PodDisruptionBudget{} },
	"k8s.cni.cncf.io/v1/NetworkAttachmentDefinition": func() any { return &NAD{} },
}

// object is one decoded manifest document.
type object struct {
	where string // file and document index
	kind  string // apiVersion/kind
	obj   any
}

// decodeStrict decodes one YAML document into its Kubernetes type: an
// unknown field, a duplicate field or a wrong type is an error.
func decodeStrict(doc []byte) (object, error) {
	var tm struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return object{}, err
	}
	key := tm.APIVersion + "/" + tm.Kind
	if tm.Kind == "Kustomization" {
		k := &Kustomization{}
		if err := unmarshalStrict(doc, k); err != nil {
			return object{}, fmt.Errorf("%s: %w", key, err)
		}
		if k.APIVersion != "kustomize.config.k8s.io/v1beta1" {
			return object{}, fmt.Errorf("kustomization apiVersion %q", k.APIVersion)
		}
		return object{kind: key, obj: k}, nil
	}
	newObj, ok := kinds[key]
	if !ok {
		return object{}, fmt.Errorf("no Go type for %q", key)
	}
	o := newObj()
	if err := unmarshalStrict(doc, o); err != nil {
		return object{}, fmt.Errorf("%s: %w", key, err)
	}
	return object{kind: key, obj: o}, nil
}

// unmarshalStrict is what `kubectl apply --validate=strict` checks:
// unknown or duplicate fields and wrong types are errors (yaml's strict
// decode, which converts YAML to JSON by the target's types), and keys
// match case-sensitively: encoding/json alone would take HostNetwork for
// hostNetwork, so a second decode with sigs.k8s.io/json reports those.
func unmarshalStrict(doc []byte, o any) error {
	if err := yaml.UnmarshalStrict(doc, o); err != nil {
		return err
	}
	j, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return err
	}
	fresh := reflect.New(reflect.TypeOf(o).Elem()).Interface()
	// Only the strict (unknown-field) errors count here: a type error is
	// YAML 1.1's y/n/on/off read without the target, which the first
	// decode already judged.
	strict, _ := sigsjson.UnmarshalStrict(j, fresh, sigsjson.DisallowUnknownFields)
	return errors.Join(strict...)
}

// splitDocs splits a YAML stream at "---" lines, dropping empty documents.
func splitDocs(b []byte) [][]byte {
	var docs [][]byte
	for _, d := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(b), -1) {
		if strings.TrimSpace(regexp.MustCompile(`(?m)^\s*#.*$`).ReplaceAllString(d, "")) != "" {
			docs = append(docs, []byte(d))
		}
	}
	return docs
}

// manifestFiles are every YAML file under this directory.
func manifestFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	require.NoError(t, filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			files = append(files, p)
		}
		return err
	}))
	require.NotEmpty(t, files)
	return files
}

// loadAll decodes every document of every manifest file strictly.
func loadAll(t *testing.T) []object {
	t.Helper()
	var objs []object
	for _, f := range manifestFiles(t) {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		for i, doc := range splitDocs(b) {
			o, err := decodeStrict(doc)
			require.NoError(t, err, "%s document %d", f, i)
			o.where = fmt.Sprintf("%s#%d", f, i)
			objs = append(objs, o)
		}
	}
	return objs
}

// The checker itself: what it must refuse.
func TestDecodeStrictRefuses(t *testing.T) {
	tests := []struct{ name, doc, want string }{
		{"unknown field in a pod spec", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, image: i, imagePulPolicy: Never}]}", "imagePulPolicy"},
		{"wrong type", "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: d}\nspec: {minReadySeconds: soon}", "minReadySeconds"},
		{"bad quantity", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, resources: {limits: {memory: lots}}}]}", "quantities must match"},
		{"duplicate field", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, name: b}", "already set"},
		{"miscased field", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {HostNetwork: true, containers: [{name: c, image: i}]}", "HostNetwork"},
		{"unknown kind", "apiVersion: v1\nkind: Podd\nmetadata: {name: p}", "no Go type"},
		{"unknown NAD field", "apiVersion: k8s.cni.cncf.io/v1\nkind: NetworkAttachmentDefinition\nmetadata: {name: n}\nspec: {config: '{}', confg: x}", "confg"},
		{"unknown kustomization field", "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: []\nimage: []", "image"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeStrict([]byte(tt.doc))
			require.ErrorContains(t, err, tt.want)
		})
	}
}

func TestManifestsDecodeStrictly(t *testing.T) {
	objs := loadAll(t)
	counts := map[string]int{}
	for _, o := range objs {
		counts[o.kind]++
	}
	t.Logf("decoded %d documents: %v", len(objs), counts)
	for kind, n := range map[string]int{
		"apps/v1/DaemonSet": 2, "apps/v1/StatefulSet": 1,
		"k8s.cni.cncf.io/v1/NetworkAttachmentDefinition": 7,
	} {
		assert.Equal(t, n, counts[kind], kind)
	}
}

// kustomizations are the directories with a kustomization.yaml.
func kustomizations(t *testing.T) []string {
	t.Helper()
	var dirs []string
	for _, f := range manifestFiles(t) {
		if filepath.Base(f) == "kustomization.yaml" {
			dirs = append(dirs, filepath.Dir(f))
		}
	}
	sort.Strings(dirs)
	return dirs
}

// render runs kustomize (the library kubectl apply -k embeds) on dir.
func render(t *testing.T, dir string) []object {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), dir)
	require.NoError(t, err, dir)
	var objs []object
	for _, r := range m.Resources() {
		b, err := r.AsYAML()
		require.NoError(t, err)
		o, err := decodeStrict(b)
		require.NoError(t, err, "%s: %s", dir, r.CurId())
		o.where = dir + ": " + r.CurId().String()
		objs = append(objs, o)
	}
	return objs
}

func TestKustomizationsRender(t *testing.T) {
	dirs := kustomizations(t)
	require.Subset(t, dirs, []string{"base", "overlays/mixed", "overlays/ovs-dpdk", "overlays/vpp", "networks", "examples/ovs-dpdk", "examples/vpp"})
	for _, dir := range dirs {
		t.Run(dir, func(t *testing.T) {
			objs := render(t, dir)
			require.NotEmpty(t, objs)
			// Every file in the directory is used: nothing is forgotten.
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			b, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
			require.NoError(t, err)
			for _, e := range entries {
				if !e.IsDir() && strings.HasSuffix(e.Name(), ".yaml") && e.Name() != "kustomization.yaml" {
					assert.Contains(t, string(b), "- "+e.Name(), "%s/%s not in its kustomization", dir, e.Name())
				}
			}
			if strings.HasPrefix(dir, "overlays/") {
				for _, o := range objs {
					if o.kind != "v1/Namespace" {
						assert.Equal(t, "usrsp", namespaceOf(o.obj), o.where)
					}
				}
			}
		})
	}
	// The mixed overlay is both engines' nodes and the NATS cluster once.
	var names []string
	for _, o := range render(t, "overlays/mixed") {
		names = append(names, o.kind+" "+nameOf(o.obj))
	}
	assert.ElementsMatch(t, []string{
		"v1/Namespace usrsp", "v1/Service usrsp-nats", "apps/v1/StatefulSet usrsp-nats",
		"policy/v1/PodDisruptionBudget usrsp-nats", "apps/v1/DaemonSet usrsp-ovs-node", "apps/v1/DaemonSet usrsp-vpp-node",
	}, names)
}

func nameOf(o any) string {
	switch v := o.(type) {
	case *NAD:
		return v.Metadata.Name
	case interface{ GetName() string }:
		return v.GetName()
	}
	return ""
}

func namespaceOf(o any) string {
	if v, ok := o.(interface{ GetNamespace() string }); ok {
		return v.GetNamespace()
	}
	return ""
}

// pinnedImages are the images `make images` builds, each tagged with the
// version its module carries in <module>/version/VERSION, nats-server with
// the version tools/go.mod pins (deploy/images/build.sh).
func pinnedImages(t *testing.T) map[string]bool {
	t.Helper()
	version := func(path string) string {
		b, err := os.ReadFile(filepath.Join(repo, path))
		require.NoError(t, err, "the version `make images` tags with")
		v := strings.TrimSpace(string(b))
		require.Regexp(t, `^\d+\.\d+\.\d+$`, v, path)
		return v
	}
	gomod, err := os.ReadFile(filepath.Join(repo, "tools/go.mod"))
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^\s+github\.com/nats-io/nats-server/v2 v(\S+)$`).FindSubmatch(gomod)
	require.NotNil(t, m, "nats-server in tools/go.mod")
	return map[string]bool{
		"localhost/usrsp/cni-installer:" + version("services/cni-entry/version/VERSION"):   true,
		"localhost/usrsp/ovs-adapter:" + version("services/ovs-adapter/version/VERSION"):   true,
		"localhost/usrsp/vpp-adapter:" + version("services/vpp-adapter/version/VERSION"):   true,
		"localhost/usrsp/pod-consumer:" + version("services/pod-consumer/version/VERSION"): true,
		"localhost/usrsp/nats-server:" + string(m[1]):                                      true,
	}
}

// exampleImages are the only images not built here: the apps of the
// example pods (deploy/README.md says how to build the first two), each
// pinned to the version it was meant for, in examples/ only.
var exampleImages = map[string]string{
	"registry.example.com/usrsp-examples/dpdk-testpmd:22.11": "DPDK 22.11, the ovs-adapter's tested DPDK",
	"registry.example.com/usrsp-examples/vpp:25.10":          "VPP 25.10, the vpp-adapter's",
	"docker.io/library/busybox:1.37.0":                       "ping in the kernel-interface pods",
}

func podSpecOf(o any) *corev1.PodSpec {
	switch v := o.(type) {
	case *corev1.Pod:
		return &v.Spec
	case *appsv1.DaemonSet:
		return &v.Spec.Template.Spec
	case *appsv1.StatefulSet:
		return &v.Spec.Template.Spec
	}
	return nil
}

func TestImagesArePinned(t *testing.T) {
	pinned := pinnedImages(t)
	used := map[string]bool{}
	check := func(where string, spec *corev1.PodSpec) {
		for _, c := range slices.Concat(spec.InitContainers, spec.Containers) {
			used[c.Image] = true
			if pinned[c.Image] {
				assert.NotEqual(t, corev1.PullAlways, c.ImagePullPolicy, "%s %s: a local image", where, c.Name)
				continue
			}
			_, ok := exampleImages[c.Image]
			assert.True(t, ok && strings.HasPrefix(where, "examples/"), "%s container %s: image %q is not one `make images` builds (%v)", where, c.Name, c.Image, pinned)
		}
	}
	for _, o := range loadAll(t) {
		if spec := podSpecOf(o.obj); spec != nil {
			check(o.where, spec)
		}
	}
	for _, dir := range kustomizations(t) {
		for _, o := range render(t, dir) {
			if spec := podSpecOf(o.obj); spec != nil {
				check(o.where, spec)
			}
		}
	}
	for img := range pinned {
		assert.True(t, used[img], "%s is built but no manifest uses it", img)
	}
}

// A node DaemonSet: what the issue asks of it.
func TestNodeDaemonSets(t *testing.T) {
	hostPaths := []string{"/opt/cni/bin", "/etc/usrsp/nats/leaf.creds", "/etc/usrsp/nats/adapter.creds",
		"/var/lib/cni/usrspcni", "/run/usrsp/l", "/var/lib/kubelet/pods"}
	bidi, h2c := corev1.MountPropagationBidirectional, corev1.MountPropagationHostToContainer
	tests := []struct {
		file, adapter, image string
		own                  []string // the vswitch's socket dir and the state dir
		// The adapter's mounts with propagation (every other has none):
		// the kubelet's pod dir at least HostToContainer, so emptyDirs
		// mounted later are seen; Bidirectional only where the adapter
		// bind-mounts OVS's dpdkvhostuser sockets into pod directories.
		propagation map[string]corev1.MountPropagationMode
	}{
		{"nodes/ovs-dpdk/daemonset.yaml", "ovs-adapter", "ovs-adapter", []string{"/var/run/openvswitch", "/var/lib/usrsp/ovs-adapter"},
			map[string]corev1.MountPropagationMode{"/var/lib/cni/usrspcni": bidi, "/var/lib/kubelet/pods": bidi}},
		{"nodes/vpp/daemonset.yaml", "vpp-adapter", "vpp-adapter", []string{"/run/vpp", "/var/lib/usrsp/vpp-adapter"},
			map[string]corev1.MountPropagationMode{"/var/lib/kubelet/pods": h2c}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			b, err := os.ReadFile(tt.file)
			require.NoError(t, err)
			docs := splitDocs(b)
			require.Len(t, docs, 1)
			o, err := decodeStrict(docs[0])
			require.NoError(t, err)
			ds := o.obj.(*appsv1.DaemonSet)
			spec := ds.Spec.Template.Spec
			assert.True(t, spec.HostNetwork, "leaf and probes on the node's loopback")
			assert.Equal(t, corev1.DNSClusterFirstWithHostNet, spec.DNSPolicy, "the leaf resolves the cluster's names")

			// Only the host paths the node needs, nothing more.
			var got []string
			vols := map[string]string{}
			for _, v := range spec.Volumes {
				if v.HostPath != nil {
					got = append(got, v.HostPath.Path)
					vols[v.Name] = v.HostPath.Path
				}
			}
			assert.ElementsMatch(t, slices.Concat(hostPaths, tt.own), got)

			require.Len(t, spec.InitContainers, 1)
			assert.Contains(t, spec.InitContainers[0].Image, "/usrsp/cni-installer:")
			byName := map[string]corev1.Container{}
			for _, c := range spec.Containers {
				byName[c.Name] = c
				require.NotNil(t, c.Resources.Requests.Memory(), c.Name)
				assert.False(t, c.Resources.Requests.Memory().IsZero(), "%s: memory request", c.Name)
				assert.False(t, c.Resources.Limits.Memory().IsZero(), "%s: memory limit", c.Name)
				assert.NotNil(t, c.LivenessProbe, c.Name)
				assert.NotNil(t, c.ReadinessProbe, c.Name)
				// Each container mounts only its own credentials file.
				for _, m := range c.VolumeMounts {
					if p := vols[m.Name]; strings.HasPrefix(p, "/etc/usrsp/nats/") {
						assert.Contains(t, p, map[string]string{"nats-leaf": "leaf", tt.adapter: "adapter"}[c.Name]+".creds", c.Name)
						assert.True(t, m.ReadOnly, "%s: %s read-only", c.Name, p)
					}
				}
			}
			require.Contains(t, byName, "nats-leaf")
			assert.Contains(t, byName["nats-leaf"].Image, "/usrsp/nats-server:")
			a, ok := byName[tt.adapter]
			require.True(t, ok, tt.adapter)
			assert.Contains(t, a.Image, "/usrsp/"+tt.image+":")
			assert.Equal(t, "/healthz", a.LivenessProbe.HTTPGet.Path)
			assert.Equal(t, "/readyz", a.ReadinessProbe.HTTPGet.Path)
			env := map[string]corev1.EnvVar{}
			for _, e := range a.Env {
				env[e.Name] = e
			}
			assert.Equal(t, "nats://127.0.0.1:4222", env["NATS_URL"].Value)
			require.NotNil(t, env["VTEP"].ValueFrom)
			assert.Equal(t, "status.hostIP", env["VTEP"].ValueFrom.FieldRef.FieldPath)
			// Pod directories at the host's paths, with the propagation
			// the table names and none elsewhere.
			mounts := map[string]corev1.VolumeMount{}
			for _, m := range a.VolumeMounts {
				mounts[m.MountPath] = m
				if p, ok := vols[m.Name]; ok && !strings.HasPrefix(p, "/etc/") {
					assert.Equal(t, p, m.MountPath, "%s at the host's path", m.Name)
				}
				want, got := tt.propagation[m.MountPath], corev1.MountPropagationMode("")
				if m.MountPropagation != nil {
					got = *m.MountPropagation
				}
				assert.Equal(t, want, got, "mountPropagation of %s", m.MountPath)
				if got == bidi {
					sc := a.SecurityContext
					assert.True(t, sc != nil && sc.Privileged != nil && *sc.Privileged, "Bidirectional needs a privileged container")
				}
			}
			for p := range tt.propagation {
				assert.Contains(t, mounts, p)
			}
			for _, c := range append(spec.Containers, spec.InitContainers...) {
				if c.Name == tt.adapter {
					continue
				}
				for _, m := range c.VolumeMounts {
					assert.Nil(t, m.MountPropagation, "%s: %s", c.Name, m.MountPath)
				}
			}
		})
	}
}

// netConf is the part of a NAD's config this test checks; cni-entry's own
// validation runs on every one in services/cni-entry/internal/config.
type netConf struct {
	Name         string          `json:"name"`
	Type         string          `json:"type"`
	Capabilities map[string]bool `json:"capabilities"`
	Host         struct {
		Engine string `json:"engine"`
		IfType string `json:"iftype"`
	} `json:"host"`
	Overlay json.RawMessage `json:"overlay"`
}

func TestNetworks(t *testing.T) {
	covered := map[string]bool{}
	nads := map[string]bool{}
	var overlays int
	for _, o := range loadAll(t) {
		nad, ok := o.obj.(*NAD)
		if !ok {
			continue
		}
		var c netConf
		dec := json.NewDecoder(bytes.NewReader([]byte(nad.Spec.Config)))
		require.NoError(t, dec.Decode(&c), o.where)
		assert.Equal(t, nad.Metadata.Name, c.Name, "%s: the network is named like its NAD", o.where)
		assert.Equal(t, "userspace", c.Type, o.where)
		assert.True(t, c.Capabilities["CNIDeviceInfoFile"], "%s: Multus passes the device-info path only with the capability", o.where)
		nads[c.Name] = true
		if c.Overlay != nil {
			overlays++
			continue
		}
		covered[c.Host.Engine+"/"+c.Host.IfType] = true
	}
	for _, e := range []string{"vpp", "ovs-dpdk"} {
		for _, i := range []string{"memif", "vhostuser", "veth"} {
			assert.True(t, covered[e+"/"+i], "no network for %s %s", e, i)
		}
	}
	assert.Equal(t, 1, overlays)

	// Every example pod asks for a network that exists.
	for _, o := range loadAll(t) {
		pod, ok := o.obj.(*corev1.Pod)
		if !ok {
			continue
		}
		var sel []struct {
			Name string `json:"name"`
		}
		require.NoError(t, json.Unmarshal([]byte(pod.Annotations["k8s.v1.cni.cncf.io/networks"]), &sel), o.where)
		require.NotEmpty(t, sel, o.where)
		for _, s := range sel {
			assert.True(t, nads[s.Name], "%s: network %q", o.where, s.Name)
		}
	}
}

// Every container says what it needs; hugepages as Kubernetes admits them
// (requests equal to limits, with a HugePages volume to map them from).
func TestContainerResources(t *testing.T) {
	for _, o := range loadAll(t) {
		spec := podSpecOf(o.obj)
		if spec == nil {
			continue
		}
		hugeVolume := slices.ContainsFunc(spec.Volumes, func(v corev1.Volume) bool {
			return v.EmptyDir != nil && strings.HasPrefix(string(v.EmptyDir.Medium), string(corev1.StorageMediumHugePages))
		})
		for _, c := range slices.Concat(spec.InitContainers, spec.Containers) {
			where := o.where + " " + c.Name
			assert.False(t, c.Resources.Requests.Memory().IsZero(), "%s: memory request", where)
			assert.False(t, c.Resources.Limits.Memory().IsZero(), "%s: memory limit", where)
			assert.False(t, c.Resources.Requests.Cpu().IsZero(), "%s: cpu request", where)
			for name, q := range c.Resources.Limits {
				if strings.HasPrefix(string(name), corev1.ResourceHugePagesPrefix) {
					assert.True(t, q.Equal(c.Resources.Requests[name]), "%s: %s requests = limits", where, name)
					assert.True(t, hugeVolume, "%s: a HugePages emptyDir", where)
				}
			}
		}
	}
}
