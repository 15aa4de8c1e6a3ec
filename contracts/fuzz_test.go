package contracts_test

import (
	"encoding/json"
	"testing"

	"usrsp.dev/contracts"
)

// Decoders face whatever arrives on a subject: they must never panic, and
// what they accept must survive a re-encode.
func FuzzDecodeAttachRequest(f *testing.F) {
	good, _ := json.Marshal(validAttach())
	for _, s := range []string{string(good), "{}", "[]", "null", `{"key":{"containerId":"a","ifName":"b"}}`,
		`{"key":{"containerId":"a","ifName":"b"},"interface":{"ifType":"vhostuser","netType":"none","vhost":{"mode":"server"}}}`} {
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
		again, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := contracts.DecodeAttachRequest(again); err != nil {
			t.Fatalf("accepted request does not re-decode: %v", err)
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
