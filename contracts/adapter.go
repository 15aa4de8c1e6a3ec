package contracts

import "context"

// Adapter is what an engine adapter implements; contracts/service puts it
// on NATS, dispatching by the op table (OpSpecs). Methods return *Error
// values to choose the code; any other error is CodeInternal. Each
// method publishes its events (see Event) before it returns, and
// contractstest.RunAdapterSuite checks all of it.
type Adapter interface {
	Attach(context.Context, *AttachRequest) (*AttachResponse, error)
	Detach(context.Context, *DetachRequest) (*DetachResponse, error)
	Check(context.Context, *CheckRequest) (*CheckResponse, error)
	List(context.Context, *ListRequest) (*ListResponse, error)
	GC(context.Context, *GCRequest) (*GCResponse, error)
	Status(context.Context, *StatusRequest) (*StatusResponse, error)
}
