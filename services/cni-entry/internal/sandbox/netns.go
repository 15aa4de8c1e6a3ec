// Package sandbox is what cni-entry does in the pod's network namespace
// (CNI_NETNS): check that it is one, and for iftype veth make, verify and
// remove the pod's kernel netdev.
package sandbox

import (
	"errors"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"

	"usrsp.dev/contracts"
)

// CheckNetns reports whether path is a network namespace (a bind-mounted
// /var/run/netns/<name> or a /proc/<pid>/ns/net). ADD calls it before any
// side effect. The code is 4 (invalid necessary environment variables):
// CNI_NETNS is one of them, and code 3 would tell the runtime there is
// nothing to clean up, which is the runtime's call, not ours.
func CheckNetns(path string) error {
	if path == "" {
		return contracts.Errorf(contracts.CodeInvalidEnv, "CNI_NETNS is required for ADD")
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return contracts.Errorf(contracts.CodeInvalidEnv, "CNI_NETNS %s does not exist", path)
	}
	if err != nil {
		return contracts.Errorf(contracts.CodeInvalidEnv, "CNI_NETNS %s cannot be opened: %v", path, err)
	}
	defer f.Close()
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &st); err != nil {
		return contracts.Errorf(contracts.CodeInvalidEnv, "CNI_NETNS %s: statfs: %v", path, err)
	}
	if st.Type != unix.NSFS_MAGIC {
		return contracts.Errorf(contracts.CodeInvalidEnv, "CNI_NETNS %s is not a namespace (not on nsfs)", path)
	}
	t, err := unix.IoctlRetInt(int(f.Fd()), unix.NS_GET_NSTYPE)
	if err != nil {
		return contracts.Errorf(contracts.CodeInvalidEnv, "CNI_NETNS %s: namespace type: %v", path, err)
	}
	if t != unix.CLONE_NEWNET {
		return contracts.Errorf(contracts.CodeInvalidEnv, "CNI_NETNS %s is a namespace but not a network namespace", path)
	}
	return nil
}
