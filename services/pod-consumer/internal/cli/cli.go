// Package cli is pod-consumer's command line: discovery (list), apply,
// dpdk-args and probe. main only wires the process to Main.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/rs/zerolog"

	"usrsp.dev/contracts"
	"usrsp.dev/services/pod-consumer/internal/discovery"
	"usrsp.dev/services/pod-consumer/version"
)

// Exit codes.
const (
	ExitOK    = 0
	ExitFail  = 1 // the command failed (or ping got no replies)
	ExitUsage = 2
)

// Env is the process around a command.
type Env struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string
}

const usage = `pod-consumer: use the userspace interfaces usrsp gave this pod

Usage:
  pod-consumer list       [--dir D] [--annotations F] [--json]
  pod-consumer apply      --engine vpp [--vpp-api-socket S] [--timeout 30s] [--watch] [--json]
  pod-consumer dpdk-args  [--eal-only] [--json]
  pod-consumer probe serve [--if net1] [--duration 0] [--json]
  pod-consumer probe ping <ip> [--if net1] [-c 3] [-i 1s] [-W 2s] [-s 56] [--json]
  pod-consumer --version | --help

Every command takes --dir (env USRSP_DIR, default /var/run/usrsp),
--annotations (env USRSP_ANNOTATIONS, default /etc/podinfo/annotations) and
--log-level (default warn; logs go to stderr).
`

// Main runs one command and returns the process exit code.
func Main(ctx context.Context, args []string, env Env) int {
	if len(args) == 0 {
		fmt.Fprint(env.Stderr, usage)
		return ExitUsage
	}
	cmds := map[string]func(context.Context, []string, Env) error{
		"list": runList, "apply": runApply, "dpdk-args": runDPDKArgs, "probe": runProbe,
	}
	run, ok := cmds[args[0]]
	if !ok {
		switch args[0] {
		case "help", "-h", "--help":
			fmt.Fprint(env.Stdout, usage)
			return ExitOK
		case "version", "--version":
			fmt.Fprintf(env.Stdout, "pod-consumer %s (contracts API %s, pod data %s)\n",
				version.Version, contracts.APIVersion, contracts.PodDataVersion)
			return ExitOK
		}
		fmt.Fprintf(env.Stderr, "pod-consumer: unknown command %q\n\n%s", args[0], usage)
		return ExitUsage
	}
	err := run(ctx, args[1:], env)
	var ue usageError
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, flag.ErrHelp):
		return ExitOK
	case errors.As(err, &ue):
		fmt.Fprintf(env.Stderr, "pod-consumer %s: %v\n", args[0], err)
		return ExitUsage
	case errors.Is(err, errSilent):
		return ExitFail
	}
	fmt.Fprintf(env.Stderr, "pod-consumer %s: %v\n", args[0], err)
	return ExitFail
}

// usageError is a bad command line.
type usageError struct{ error }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// errSilent fails a command whose output already said why.
var errSilent = errors.New("failed")

// common are the flags every command has.
type common struct {
	dir, annotations, logLevel string
	json                       bool
}

func newFlags(name string, env Env) (*flag.FlagSet, *common) {
	c := &common{}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.StringVar(&c.dir, "dir", envOr(env, "USRSP_DIR", discovery.DefaultDir), "pod data directory (the pod's usrsp mount)")
	fs.StringVar(&c.annotations, "annotations", envOr(env, "USRSP_ANNOTATIONS", discovery.DefaultAnnotations),
		"downward API annotations file (\"\" to skip)")
	fs.StringVar(&c.logLevel, "log-level", "warn", "trace, debug, info, warn, error or disabled")
	fs.BoolVar(&c.json, "json", false, "print JSON for machines")
	return fs, c
}

// parse parses flags and positional arguments in any order, so
// "probe ping 10.0.0.2 -c 3" works like ping does.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{err}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// parseFlags parses args, which must hold flags only.
func parseFlags(fs *flag.FlagSet, args []string) error {
	pos, err := parse(fs, args)
	if err == nil && len(pos) > 0 {
		err = usagef("unexpected argument %q", pos[0])
	}
	return err
}

// parseDiscover parses args (flags only) and discovers the pod's
// interfaces.
func (c *common) parseDiscover(fs *flag.FlagSet, args []string) ([]discovery.Interface, error) {
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	return c.discover()
}

func envOr(env Env, key, def string) string {
	if v := env.Getenv(key); v != "" {
		return v
	}
	return def
}

func (c *common) logger(env Env) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(c.logLevel)
	if err != nil || c.logLevel == "" {
		return zerolog.Nop(), usagef("--log-level %q: want trace, debug, info, warn, error or disabled", c.logLevel)
	}
	return zerolog.New(env.Stderr).Level(lvl).With().Timestamp().Logger(), nil
}

func (c *common) discover() ([]discovery.Interface, error) {
	return discovery.Discover(c.dir, c.annotations)
}

// loggerAndInterfaces are the logger and the pod's interfaces of a command
// that works on them (apply, probe).
func (c *common) loggerAndInterfaces(env Env) (zerolog.Logger, []discovery.Interface, error) {
	log, err := c.logger(env)
	if err != nil {
		return log, nil, err
	}
	ifs, err := c.discover()
	return log, ifs, err
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// pick returns the interface named name, or the first one matching ok.
func pick(ifs []discovery.Interface, name string, ok func(discovery.Interface) bool, what string) (discovery.Interface, error) {
	var names []string
	for _, i := range ifs {
		names = append(names, i.Name)
		if (name == "" && ok(i)) || (name != "" && i.Name == name) {
			return i, nil
		}
	}
	if name == "" {
		return discovery.Interface{}, contracts.Errorf(contracts.CodeNotFound, "no %s among the pod's interfaces [%s]", what, strings.Join(names, " "))
	}
	return discovery.Interface{}, contracts.Errorf(contracts.CodeNotFound, "no interface %q among the pod's interfaces [%s]", name, strings.Join(names, " "))
}

// OSEnv is the Env of the running process.
func OSEnv() Env { return Env{Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv} }
