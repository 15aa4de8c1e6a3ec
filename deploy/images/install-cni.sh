#!/bin/sh
# Installs the CNI binary on the node as "userspace" (the type existing
# NetworkAttachmentDefinitions use). Copy then rename: a runtime executing
# the old binary at that moment never sees a half-written file.
set -eu
dest=${CNI_BIN_DIR:-/host/opt/cni/bin}
cp /usr/local/bin/userspace "$dest/.userspace.tmp"
chmod 0755 "$dest/.userspace.tmp"
mv -f "$dest/.userspace.tmp" "$dest/userspace"
echo "installed $dest/userspace"
