package adapter

import (
	"usrsp.dev/contracts"
	"usrsp.dev/libs/adapterkit/recordstore"
)

// Record is one desired attachment and what the adapter created for it:
// the durable state the replay re-creates after VPP or the adapter
// restarts.
type Record struct {
	Attachment contracts.Attachment `json:"attachment"`
	// Tag is the VPP interface tag that marks the host side as ours:
	// Tag(Attachment.Key).
	Tag string `json:"tag"`
	// SwIfIndex is the last known sw_if_index (VPP renumbers on restart;
	// the tag is what finds the interface).
	SwIfIndex uint32 `json:"swIfIndex"`
	// MemifSocketFile is the filename registered with VPP; MemifSocketAdded
	// says the adapter registered it (and so may remove it).
	MemifSocketFile  string `json:"memifSocketFile,omitempty"`
	MemifSocketID    uint32 `json:"memifSocketId,omitempty"`
	MemifSocketAdded bool   `json:"memifSocketAdded,omitempty"`
	// BridgeCreated says this attachment created its bridge domain.
	BridgeCreated bool `json:"bridgeCreated,omitempty"`
	// Table is the IP table (VRF) of an L3 attachment.
	Table uint32 `json:"table,omitempty"`
}

// Store is the directory of records (one file per attachment).
type Store = recordstore.Store[*Record]

// OpenStore opens (creating) the records in dir; record files of older
// adapter versions are adopted.
func OpenStore(dir string) (*Store, error) {
	return recordstore.Open(dir, func(r *Record) contracts.AttachmentKey { return r.Attachment.Key })
}
