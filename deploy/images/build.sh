#!/usr/bin/env bash
# Builds usrsp's five images FROM scratch with podman: `make images` runs it
# from the repository root. Each image holds static (CGO_ENABLED=0,
# -trimpath) binaries built here on the host and nothing else, is tagged
# localhost/usrsp/<component>:<its module's version> and is built with
# --pull=never: FROM scratch needs no base image, so no registry is ever
# contacted. See deploy/images/README.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
GO=${GO:-go}
out=${IMAGES_DIR:-bin/images}
prefix=${IMAGE_PREFIX:-localhost/usrsp}

version() { tr -d '[:space:]' <"$1/version/VERSION"; }
# The same token every NATS subject carries (contracts/subjects.go).
api=$(sed -n 's/^const APIVersion = "\(.*\)"$/\1/p' contracts/subjects.go)
# nats-server's version is the one the repository pins in go.mod.
nats_version=$(cd tools && $GO list -m -f '{{.Version}}' github.com/nats-io/nats-server/v2)
revision=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)

# build <component> <module dir> <package> <binary name>
build() {
  mkdir -p "$out/$1"
  echo "   $out/$1/$4"
  (cd "$2" && CGO_ENABLED=0 $GO build -trimpath -ldflags='-s -w' -o "$OLDPWD/$out/$1/$4" "$3")
}

# image <component> <version> [extra podman build args...]
# --timestamp 0 and no intermediate layers: the same binaries give the same
# image ID, and a rebuild leaves nothing behind. An image this tag named
# before and no longer does was ours: it is removed unless a container or
# another tag still uses it.
image() {
  local c=$1 v=$2
  shift 2
  local ref=$prefix/$c:$v old new
  echo "== image $ref"
  old=$(podman image inspect --format '{{.Id}}' "$ref" 2>/dev/null || true)
  podman build --quiet --pull=never --layers=false --timestamp 0 --file "deploy/images/$c.Containerfile" \
    --build-arg VERSION="$v" --build-arg REVISION="$revision" --build-arg CONTRACTS_API="$api" \
    "$@" --tag "$ref" "$out/$c" >/dev/null
  new=$(podman image inspect --format '{{.Id}}' "$ref")
  if [[ -n $old && $old != "$new" ]]; then
    podman rmi "$old" >/dev/null 2>&1 || true
  fi
}

# tested_for <binary>: the vswitch an adapter says it was tested with, from
# its own --version ("... built and tested for VPP 25.10)").
tested_for() { "$1" --version | sed -n 's/.*built and tested for \(.*\))$/\1/p'; }

echo "== static binaries"
build cni-installer services/cni-entry ./cmd/install-cni install-cni
build cni-installer services/cni-entry ./cmd/userspace userspace
build ovs-adapter services/ovs-adapter ./cmd/ovs-adapter ovs-adapter
build vpp-adapter services/vpp-adapter ./cmd/vpp-adapter vpp-adapter
build pod-consumer services/pod-consumer ./cmd/pod-consumer pod-consumer
build nats-server tools github.com/nats-io/nats-server/v2 nats-server

image cni-installer "$(version services/cni-entry)"
image ovs-adapter "$(version services/ovs-adapter)" --build-arg VSWITCH="$(tested_for "$out/ovs-adapter/ovs-adapter")"
image vpp-adapter "$(version services/vpp-adapter)" --build-arg VSWITCH="$(tested_for "$out/vpp-adapter/vpp-adapter")"
image pod-consumer "$(version services/pod-consumer)"
image nats-server "${nats_version#v}"

podman images --filter "reference=$prefix/*" --format '{{.Repository}}:{{.Tag}}  {{.Size}}'
