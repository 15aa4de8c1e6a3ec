package podmantest

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
)

// Pod is a podman pod whose infra container (PauseImage) holds the network
// namespace that CNI sets up.
type Pod struct {
	p       *Podman
	Name    string
	ID      string
	InfraID string // the CNI_CONTAINERID podman passes
}

// CreatePod creates a pod on network (`podman pod create --network`) and
// starts it, so its infra container runs and CNI ADD has happened.
func (p *Podman) CreatePod(ctx context.Context, name, network string) (*Pod, error) {
	out, err := p.Run(ctx, "pod", "create", "--name", name, "--network", network)
	if err != nil {
		return nil, err
	}
	pod := &Pod{p: p, Name: name, ID: strings.TrimSpace(out)}
	out, err = p.Run(ctx, "pod", "inspect", "--format", "{{.InfraContainerID}}", name)
	if err != nil {
		return nil, err
	}
	pod.InfraID = strings.TrimSpace(out)
	if len(pod.InfraID) < 12 {
		return nil, fmt.Errorf("pod %s: infra container id %q", name, pod.InfraID)
	}
	if _, err := p.Run(ctx, "pod", "start", name); err != nil {
		return pod, err
	}
	return pod, nil
}

// Infra is what podman reports about the pod's infra container.
type Infra struct {
	PID        int
	SandboxKey string // the network namespace, CNI_NETNS
	Networks   map[string]Attachment
}

// Attachment is podman's view of one network of a container: what it made
// of the CNI result.
type Attachment struct {
	IPAddress   string
	IPPrefixLen int
	MacAddress  string
}

// Infra inspects the pod's infra container.
func (pod *Pod) Infra(ctx context.Context) (*Infra, error) {
	out, err := pod.p.Run(ctx, "inspect", "--type", "container", pod.InfraID)
	if err != nil {
		return nil, err
	}
	var v []struct {
		State           struct{ Pid int }
		NetworkSettings struct {
			SandboxKey string
			Networks   map[string]Attachment
		}
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || len(v) != 1 {
		return nil, fmt.Errorf("podman inspect %s: %d entries, %v", pod.InfraID, len(v), err)
	}
	return &Infra{PID: v[0].State.Pid, SandboxKey: v[0].NetworkSettings.SandboxKey, Networks: v[0].NetworkSettings.Networks}, nil
}

// Container is how a container in the pod is run.
type Container struct {
	Name   string
	Image  string
	Mounts map[string]string // host path -> container path (bind mounts)
	Args   []string          // after the image (its entrypoint's arguments)
}

func (pod *Pod) runArgs(c Container) []string {
	args := []string{"--pod", pod.Name, "--name", c.Name, "--pull=never"}
	for host, ctr := range c.Mounts {
		args = append(args, "--volume", host+":"+ctr)
	}
	return append(append(args, c.Image), c.Args...)
}

// Start starts a container in the pod in the background (`podman run -d`).
func (pod *Pod) Start(ctx context.Context, c Container) error {
	_, err := pod.p.Run(ctx, append([]string{"run", "--detach"}, pod.runArgs(c)...)...)
	return err
}

// Run runs a container in the pod to completion and removes it; it returns
// the container's stdout, and an error (with its stderr) if it failed.
func (pod *Pod) Run(ctx context.Context, c Container) (string, error) {
	return pod.p.Run(ctx, append([]string{"run", "--rm"}, pod.runArgs(c)...)...)
}

// Logs returns a container's output so far, stdout and stderr.
func (p *Podman) Logs(ctx context.Context, name string) (string, error) {
	return p.run(ctx, true, "logs", name)
}

// Remove removes the pod with its containers (`podman pod rm -f`); podman
// stops the infra container, which runs CNI DEL.
func (pod *Pod) Remove(ctx context.Context) error {
	_, err := pod.p.Run(ctx, "pod", "rm", "--force", "--time", "2", pod.Name)
	return err
}
