package contracts

import "context"

// MaxRequestBytes bounds a request body an adapter decodes. The largest
// real request is a GC's valid list: 256 KiB holds about 2,000 keys, far
// more than the pods a node runs; anything bigger is refused before
// decoding.
const MaxRequestBytes = 256 << 10

// OpSpec is one row of the operation table: everything contracts/service
// needs to serve an Op. Adding an operation means a constant, its message
// types, a decoder, the Adapter method, one row in opTable and a
// one-line Client method.
type OpSpec struct {
	Op Op
	// Keyed ops act on one attachment: their requests for the same
	// AttachmentKey are serialized.
	Keyed  bool
	decode func([]byte) (*Call, error)
}

// Call is one decoded request, ready to run against an Adapter.
type Call struct {
	// Key is the request's attachment for keyed ops, nil otherwise.
	Key *AttachmentKey
	// Run calls the Adapter method of the op.
	Run func(context.Context, Adapter) (any, error)
}

// Decode parses and checks a request body of the op.
func (s OpSpec) Decode(b []byte) (*Call, error) { return s.decode(b) }

// row builds a table row from a decoder and an Adapter method
// expression; key is nil for ops that are not keyed.
func row[Req, Resp any](op Op, decode func([]byte) (*Req, error), key func(*Req) AttachmentKey,
	method func(Adapter, context.Context, *Req) (*Resp, error)) OpSpec {
	return OpSpec{Op: op, Keyed: key != nil, decode: func(b []byte) (*Call, error) {
		if len(b) > MaxRequestBytes {
			return nil, Errorf(CodeInvalidConfig, "%s request is %d bytes, more than the %d an adapter accepts", op, len(b), MaxRequestBytes)
		}
		r, err := decode(b)
		if err != nil {
			return nil, err
		}
		c := &Call{Run: func(ctx context.Context, a Adapter) (any, error) { return method(a, ctx, r) }}
		if key != nil {
			k := key(r)
			c.Key = &k
		}
		return c, nil
	}}
}

var opTable = []OpSpec{
	row(OpAttach, DecodeAttachRequest, func(r *AttachRequest) AttachmentKey { return r.Key }, Adapter.Attach),
	row(OpDetach, DecodeDetachRequest, func(r *DetachRequest) AttachmentKey { return r.Key }, Adapter.Detach),
	row(OpCheck, DecodeCheckRequest, func(r *CheckRequest) AttachmentKey { return r.Key }, Adapter.Check),
	row(OpList, DecodeListRequest, nil, Adapter.List),
	row(OpGC, DecodeGCRequest, nil, Adapter.GC),
	row(OpStatus, DecodeStatusRequest, nil, Adapter.Status),
}

// Ops lists every operation, in the order services register them.
var Ops = func() []Op {
	ops := make([]Op, len(opTable))
	for i, s := range opTable {
		ops[i] = s.Op
	}
	return ops
}()

// OpSpecs returns the operation table, in the order of Ops.
func OpSpecs() []OpSpec { return append([]OpSpec(nil), opTable...) }
