package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

// RestartSubcommand is the hidden usrsp-bench subcommand that cnibench's
// recover mode runs as its --restart-cmd: it asks the running
// usrsp-bench, over a unix socket, to restart the harness's vswitch
// (ovs-vswitchd or the host VPP, a child of that process, so only it can)
// and returns when done.
const RestartSubcommand = "restart-vswitch"

// restartServer serves restart requests on a unix socket, one at a time.
type restartServer struct {
	ln      net.Listener
	restart func(context.Context) error
}

func listenRestart(ctx context.Context, path string, restart func(context.Context) error) (*restartServer, error) {
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	s := &restartServer{ln: ln, restart: restart}
	go s.serve(ctx)
	return s, nil
}

func (s *restartServer) serve(ctx context.Context) {
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return // closed
		}
		reply := "ok\n"
		if err := s.restart(ctx); err != nil {
			reply = "error: " + strings.ReplaceAll(err.Error(), "\n", " | ") + "\n"
		}
		_, _ = conn.Write([]byte(reply))
		_ = conn.Close()
	}
}

func (s *restartServer) Close() error { return s.ln.Close() }

// RequestRestart is the subcommand's body: it asks the server on sock to
// restart the vswitch and waits (bounded) for its answer.
func RequestRestart(sock string, timeout time.Duration) error {
	conn, err := net.DialTimeout("unix", sock, 5*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return fmt.Errorf("no answer from %s: %w", sock, err)
	}
	if line = strings.TrimSpace(line); line != "ok" {
		return errors.New(line)
	}
	return nil
}

// restartCommand is the shell command that runs RequestRestart through
// this very binary.
func restartCommand(sock string) (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%q %s %q", exe, RestartSubcommand, sock), nil
}
