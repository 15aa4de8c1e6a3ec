package contracts_test

import (
	"errors"
	"testing"
	"time"

	"usrsp.dev/contracts"
)

func TestEventConstructors(t *testing.T) {
	k := contracts.AttachmentKey{ContainerID: "c1", IfName: "net1"}
	tests := []struct {
		name    string
		ev      contracts.Event
		kind    contracts.EventKind
		message string
		code    contracts.Code
		keyed   bool
	}{
		{"attached", contracts.AttachedEvent(k, "n", time.Second, "port usp1"), contracts.EventAttached, "attached: port usp1", 0, true},
		{"attached without detail", contracts.AttachedEvent(k, "n", 0, ""), contracts.EventAttached, "attached", 0, true},
		{"detached", contracts.DetachedEvent(k, "n", 0, "memif1/0"), contracts.EventDetached, "detached: memif1/0", 0, true},
		{"gc", contracts.GCEvent(k, "n", 0, ""), contracts.EventDetached, "garbage collected", 0, true},
		{"check mismatch", contracts.ErrorEvent(contracts.OpCheck, &k, "n", 0, contracts.Errorf(contracts.CodeMismatch, "differs")),
			contracts.EventError, "check: differs", contracts.CodeMismatch, true},
		{"uncoded error", contracts.ErrorEvent(contracts.OpList, nil, "n", 0, errors.New("boom")), contracts.EventError, "list: boom", contracts.CodeInternal, false},
		{"reconciled", contracts.ReconciledEvent(nil, "n", 0, "removed 2"), contracts.EventReconciled, "reconciled: removed 2", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := tt.ev
			if ev.Kind != tt.kind || ev.Message != tt.message || ev.Code != tt.code || ev.Network != "n" {
				t.Errorf("got kind %q message %q code %d network %q; want %q %q %d %q", ev.Kind, ev.Message, ev.Code, ev.Network, tt.kind, tt.message, tt.code, "n")
			}
			if (ev.Key != nil) != tt.keyed || ev.Key != nil && *ev.Key != k {
				t.Errorf("got key %v, want keyed %v", ev.Key, tt.keyed)
			}
		})
	}
}

// Every Op has exactly one row in the table, in the order of Ops, and
// the keyed ones are those whose requests carry a key.
func TestOpTable(t *testing.T) {
	specs := contracts.OpSpecs()
	if len(specs) != len(contracts.Ops) {
		t.Fatalf("%d table rows for %d ops", len(specs), len(contracts.Ops))
	}
	keyed := map[contracts.Op]bool{contracts.OpAttach: true, contracts.OpDetach: true, contracts.OpCheck: true}
	for i, s := range specs {
		if s.Op != contracts.Ops[i] || s.Keyed != keyed[s.Op] {
			t.Errorf("row %d: op %s keyed %v", i, s.Op, s.Keyed)
		}
		if _, err := s.Decode([]byte("{")); contracts.CodeOf(err) != contracts.CodeDecode {
			t.Errorf("%s: decoding bad JSON gave %v, want code %d", s.Op, err, contracts.CodeDecode)
		}
	}
}
