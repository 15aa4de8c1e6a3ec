#!/usr/bin/env bash
# install-deps.sh: everything a node (or a CI machine) needs to run usrsp's
# OVS-DPDK path: OVS built with DPDK, dpdk-testpmd, the memif PMD, iproute2,
# and 2 MiB hugepages. Idempotent and quick when already done; run as root.
# It never starts the system's OVS service: usrsp's tests, e2e and demo run
# a private OVS-DPDK instance (libs/ovsdpdk).
#
# Env: HUGEPAGES (default 256) is the minimum number of 2 MiB pages: two
# private OVS-DPDK instances of the default 256 MB (libs/ovsdpdk
# DefaultSocketMemMB, MaxInstances), the two "nodes" of the overlay tests.
set -euo pipefail

# libssl3 and libunwind8: what a VPP 25.10 build (../shared/vpp, FD.io's packages) needs at run time.
# podman, runc, iputils-ping: the e2e test where podman (CNI backend, runc; crun fails with hybrid cgroups) runs pods that ping.
PACKAGES=(openvswitch-switch-dpdk dpdk dpdk-dev librte-net-memif23 iproute2 libssl3 libunwind8 podman runc iputils-ping)
OVS_DPDK=/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk
HUGEPAGES=${HUGEPAGES:-256}

say() { printf 'install-deps: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root (packages, alternatives, hugepages)"

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  say "installing ${missing[*]}"
  # Keep maintainer scripts from starting openvswitch-switch: a policy-rc.d
  # that denies every start, removed again on exit (only if we created it).
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  say "packages present: ${PACKAGES[*]}"
fi

[[ -x $OVS_DPDK ]] || die "$OVS_DPDK missing after installing openvswitch-switch-dpdk"
if [[ $(readlink -f /etc/alternatives/ovs-vswitchd 2>/dev/null) != "$OVS_DPDK" ]]; then
  say "selecting $OVS_DPDK as ovs-vswitchd"
  update-alternatives --set ovs-vswitchd "$OVS_DPDK" >/dev/null
else
  say "ovs-vswitchd alternative already $OVS_DPDK"
fi

have=$(cat /proc/sys/vm/nr_hugepages)
if ((have < HUGEPAGES)); then
  say "hugepages: $have -> $HUGEPAGES x 2 MiB"
  echo "$HUGEPAGES" >/proc/sys/vm/nr_hugepages
  have=$(cat /proc/sys/vm/nr_hugepages)
  ((have >= HUGEPAGES)) || die "kernel gave only $have of $HUGEPAGES hugepages (memory fragmented?)"
else
  say "hugepages: $have x 2 MiB (>= $HUGEPAGES)"
fi

if ! findmnt -n -t hugetlbfs /dev/hugepages >/dev/null 2>&1; then
  say "mounting hugetlbfs on /dev/hugepages"
  mkdir -p /dev/hugepages
  mount -t hugetlbfs nodev /dev/hugepages
else
  say "hugetlbfs mounted on /dev/hugepages"
fi
say "done"
