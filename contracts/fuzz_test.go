package contracts_test

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"testing"

	"usrsp.dev/contracts"
)

// Decoders face whatever arrives on a subject: they must never panic, and
// what they accept must survive a re-encode.
func FuzzDecodeAttachRequest(f *testing.F) {
	good, _ := json.Marshal(validAttach())
	for _, s := range []string{string(good), "{}", "[]", "null", `{"key":{"containerId":"a","ifName":"b"}}`,
		`{"key":{"containerId":"a","ifName":"b"},"interface":{"ifType":"vhostuser","netType":"none","vhost":{"mode":"server"}}}`,
		// limits.Wire at and past its edges
		memifSeed(255, 16384, 65535, 65535, 4094, "01234567890123456789012"),
		memifSeed(256, 2, 128, 68, 1, "012345678901234567890123"),
		memifSeed(1, 32768, 127, 67, 4095, ""),
		`{"key":{"containerId":"a","ifName":"b"},"interface":{"ifType":"veth","netType":"none","veth":{"hostIfName":"usv0"},"podAccess":{"gid":65534,"mode":438}}}`,
		`{"key":{"containerId":"a","ifName":"b"},"interface":{"ifType":"veth","netType":"none","veth":{"hostIfName":"usv0"},"podAccess":{"gid":-1,"mode":2486}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := contracts.DecodeAttachRequest(b)
		if err != nil {
			if contracts.CodeOf(err) == contracts.CodeInternal {
				t.Fatalf("uncoded error: %v", err)
			}
			return
		}
		// What an adapter chowns and chmods with: a gid, rw bits only.
		if a := r.Interface.PodAccess; a != nil && (a.GID < 0 || a.GID > contracts.MaxGID || a.SocketMode()&^0o666 != 0 || a.DirMode()&^(fs.ModeSetgid|0o777) != 0) {
			t.Fatalf("accepted podAccess %v", a)
		}
		again, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := contracts.DecodeAttachRequest(again); err != nil {
			t.Fatalf("accepted request does not re-decode: %v", err)
		}
	})
}

func memifSeed(queues, ring, buf, mtu, vlan int, secret string) string {
	return fmt.Sprintf(`{"key":{"containerId":"a","ifName":"b"},"interface":{"ifType":"memif","netType":"bridge","socketPath":"/s",`+
		`"mtu":%d,"bridge":{"id":7,"vlan":%d},"memif":{"role":"slave","mode":"ethernet","queues":%d,"ringSize":%d,"bufferSize":%d,"secret":%q}}}`,
		mtu, vlan, queues, ring, buf, secret)
}

// FuzzDecodeRequests feeds every decoder of the op table (so a new op is
// covered by its row) and the event decoder: never a panic, never an
// error without a code.
func FuzzDecodeRequests(f *testing.F) {
	for _, s := range []string{"", "{}", "null", "[]", `{"key":{"containerId":"c","ifName":"net1"},"network":"n"}`,
		`{"network":"n","valid":[{"containerId":"c1","ifName":"net1"}]}`,
		`{"kind":"error","node":"n","engine":"vpp","key":{"containerId":"c","ifName":"net1"},"message":"check: x","code":101}`,
		memifSeed(255, 16384, 65535, 9702, 4094, "s"),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, spec := range contracts.OpSpecs() {
			call, err := spec.Decode(b)
			switch {
			case err != nil && contracts.CodeOf(err) == contracts.CodeInternal:
				t.Fatalf("%s: uncoded error: %v", spec.Op, err)
			case err == nil && spec.Keyed != (call.Key != nil):
				t.Fatalf("%s: keyed %v but call key %v", spec.Op, spec.Keyed, call.Key)
			}
		}
		if _, err := contracts.DecodeEvent(b); err != nil && contracts.CodeOf(err) != contracts.CodeDecode {
			t.Fatalf("event: error with code %d: %v", contracts.CodeOf(err), err)
		}
	})
}

func FuzzDecodePodData(f *testing.F) {
	f.Add([]byte(`{"version":"usrsp/v1","containerId":"c","ifName":"net1","interface":{"ifType":"memif","netType":"none","socketPath":"/s","memif":{"role":"slave","mode":"ip"}}}`))
	f.Add([]byte(`{"version":"usrsp/v1"}`))
	f.Add([]byte(`{"version":"usrsp/v1","containerId":"c","ifName":"net1","interface":{"ifType":"veth","netType":"bridge","socketPath":"","mac":"02:00:00:00:00:01"}}`))
	f.Add([]byte(`nope`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := contracts.DecodePodData(b)
		if err == nil && (d.Interface.SocketPath == "") != (d.Interface.IfType == contracts.IfTypeVeth) {
			t.Fatal("accepted pod data with a socket path for veth or without one for memif/vhostuser")
		}
	})
}

func FuzzDecodeGCRequest(f *testing.F) {
	f.Add([]byte(`{"network":"n","valid":[{"containerId":"c1","ifName":"net1"}]}`))
	f.Add([]byte(`{"network":""}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := contracts.DecodeGCRequest(b)
		if err == nil && r.Network == "" {
			t.Fatal("accepted gc request without network")
		}
	})
}
