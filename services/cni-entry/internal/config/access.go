package config

import (
	"io/fs"
	"os/user"
	"strconv"

	"usrsp.dev/contracts"
)

// DefaultPodAccessMode is podAccess.mode when only the group is set.
const DefaultPodAccessMode = "0660"

// PodAccess is who in the pod may use its files (NetConf podAccess): the
// pod's directory, its data file and the sockets get the group, with
// modes derived from Mode (contracts.PodAccess).
type PodAccess struct {
	Group string `json:"group,omitempty"` // unix group name or gid, on the host
	Mode  string `json:"mode,omitempty"`  // octal, e.g. "0660"

	// Perm is Mode parsed.
	Perm fs.FileMode `json:"-"`
	// field names Group in errors: podAccess.group, or host.vhost.group
	// (the deprecated alias) when it came from there.
	field string
}

// normalizePodAccess folds the deprecated host.vhost.group into
// podAccess, applies the default mode and checks both.
func normalizePodAccess(c *NetConf) error {
	if v := c.Host.Vhost; v != nil && v.Group != "" {
		switch {
		case c.PodAccess == nil:
			c.PodAccess = &PodAccess{Group: v.Group, field: "host.vhost.group"}
		case c.PodAccess.Group == "":
			c.PodAccess.Group, c.PodAccess.field = v.Group, "host.vhost.group"
		case c.PodAccess.Group != v.Group:
			return errorf(contracts.CodeInvalidConfig, "host.vhost.group %q differs from podAccess.group %q: host.vhost.group is a deprecated alias, set only podAccess", v.Group, c.PodAccess.Group)
		}
	}
	a := c.PodAccess
	if a == nil {
		return nil
	}
	if a.field == "" {
		a.field = "podAccess.group"
	}
	switch {
	case a.Group == "":
		return errorf(contracts.CodeInvalidConfig, "podAccess.group is required: the unix group (name or gid) whose members in the pod may use its files")
	case !validGroup(a.Group):
		return errorf(contracts.CodeInvalidConfig, "%s %q is not a unix group name or gid", a.field, a.Group)
	}
	a.Mode = orDefault(a.Mode, DefaultPodAccessMode)
	m, err := strconv.ParseUint(a.Mode, 8, 32)
	if err != nil {
		return errorf(contracts.CodeInvalidConfig, "podAccess.mode %q is not an octal mode like %s", a.Mode, DefaultPodAccessMode)
	}
	a.Perm = fs.FileMode(m)
	if err := (contracts.PodAccess{Mode: a.Perm}).Check("podAccess"); err != nil {
		return errorf(contracts.CodeInvalidConfig, "%v", err)
	}
	return nil
}

// ResolvePodAccess turns a validated podAccess into what the adapters are
// sent: the group's gid on this host (cni-entry runs on the host; the
// adapters' containers have other /etc/group files). nil stays nil. It is
// the one step after LoadNetConf that reads the system, so LoadNetConf
// stays pure.
func ResolvePodAccess(a *PodAccess) (*contracts.PodAccess, error) {
	if a == nil {
		return nil, nil
	}
	gid, err := strconv.Atoi(a.Group)
	if err != nil {
		g, lerr := user.LookupGroup(a.Group)
		if lerr != nil {
			return nil, errorf(contracts.CodeInvalidConfig, "%s %q is not a group on this host: %v (give the gid instead if groups come from a directory service)", a.field, a.Group, lerr)
		}
		if gid, err = strconv.Atoi(g.Gid); err != nil {
			return nil, errorf(contracts.CodeInvalidConfig, "%s %q has gid %q, not a number", a.field, a.Group, g.Gid)
		}
	}
	out := &contracts.PodAccess{GID: gid, Mode: a.Perm}
	if err := out.Check(a.field); err != nil {
		return nil, errorf(contracts.CodeInvalidConfig, "%v", err)
	}
	return out, nil
}
