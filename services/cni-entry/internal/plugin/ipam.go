package plugin

import (
	"context"
	"errors"
	"path/filepath"
	"slices"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"

	"usrsp.dev/contracts"
)

// IPAM runs the IPAM plugin named by ipam.type. args carries the CNI
// environment explicitly (GC releases addresses of other attachments, so
// the inherited environment is not enough).
type IPAM interface {
	Add(ctx context.Context, plugin string, stdin []byte, args *invoke.Args) (types.Result, error)
	Del(ctx context.Context, plugin string, stdin []byte, args *invoke.Args) error
	Check(ctx context.Context, plugin string, stdin []byte, args *invoke.Args) error
	Status(ctx context.Context, plugin string, stdin []byte, args *invoke.Args) error
	GC(ctx context.Context, plugin string, stdin []byte, args *invoke.Args) error
}

// ExecIPAM runs IPAM plugins found in args.Path, like invoke.Delegate*.
type ExecIPAM struct {
	Exec invoke.Exec // nil: run real processes
}

var _ IPAM = ExecIPAM{}

// Add implements IPAM.
func (e ExecIPAM) Add(ctx context.Context, plugin string, stdin []byte, args *invoke.Args) (types.Result, error) {
	path, err := e.find(plugin, args)
	if err != nil {
		return nil, err
	}
	return invoke.ExecPluginWithResult(ctx, path, stdin, withCommand(args, "ADD"), e.Exec)
}

// Del implements IPAM.
func (e ExecIPAM) Del(ctx context.Context, plugin string, stdin []byte, args *invoke.Args) error {
	return e.noResult(ctx, plugin, stdin, args, "DEL")
}

// Check implements IPAM.
func (e ExecIPAM) Check(ctx context.Context, plugin string, stdin []byte, args *invoke.Args) error {
	return e.noResult(ctx, plugin, stdin, args, "CHECK")
}

// Status implements IPAM.
func (e ExecIPAM) Status(ctx context.Context, plugin string, stdin []byte, args *invoke.Args) error {
	return e.noResult(ctx, plugin, stdin, args, "STATUS")
}

// GC implements IPAM.
func (e ExecIPAM) GC(ctx context.Context, plugin string, stdin []byte, args *invoke.Args) error {
	return e.noResult(ctx, plugin, stdin, args, "GC")
}

func (e ExecIPAM) noResult(ctx context.Context, plugin string, stdin []byte, args *invoke.Args, verb string) error {
	path, err := e.find(plugin, args)
	if err != nil {
		return err
	}
	return invoke.ExecPluginWithoutResult(ctx, path, stdin, withCommand(args, verb), e.Exec)
}

func (e ExecIPAM) find(plugin string, args *invoke.Args) (string, error) {
	path, err := invoke.FindInPath(plugin, filepath.SplitList(args.Path))
	if err != nil {
		return "", contracts.Errorf(contracts.CodeInvalidConfig, "ipam.type %q: %v", plugin, err)
	}
	return path, nil
}

func withCommand(args *invoke.Args, verb string) *invoke.Args {
	a := *args
	a.Command = verb
	return &a
}

// unsupported reports whether a delegated plugin rejected a verb it does
// not implement: an older spec version (1) or an unknown command (4).
func unsupported(err error) bool {
	return isCNICode(err, types.ErrIncompatibleCNIVersion, types.ErrInvalidEnvironmentVariables)
}

// isCNICode reports whether err is a delegated plugin's error with one of
// codes.
func isCNICode(err error, codes ...uint) bool {
	var e *types.Error
	return errors.As(err, &e) && slices.Contains(codes, e.Code)
}
