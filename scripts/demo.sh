#!/bin/bash
# `make demo`: builds a disk from the example image shipped in
# examples/demo-image (no network) and shows what GKE will find on it.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${SBDISK:=build/sbdisk}"
mkdir -p demo
out=demo/demo.raw
cache=demo/cache

echo "+ sbdisk build -o $out --gce-tar demo/demo.tar.gz --name sbdisk-demo oci:examples/demo-image:1.0"
"$SBDISK" build --cache-dir "$cache" -o "$out" --gce-tar demo/demo.tar.gz --name sbdisk-demo \
  oci:examples/demo-image:1.0

echo
echo "+ ls -ls $out   # sparse: the apparent size is whole GiB, the real usage is small"
ls -ls "$out"
echo
echo "+ e2fsck -fn $out"
e2fsck -fn "$out" 2>&1 | tail -1
dbg() { debugfs -R "$1" "$out" 2>/dev/null; }
echo
echo "+ cat /snapshots.metadata"
dbg "cat /snapshots.metadata"
echo
echo "+ cat /images.metadata"
dbg "cat /images.metadata"
echo
echo "+ ls -l /snapshots/2/fs/etc   # the whiteout for /etc/motd is a 0:0 character device"
dbg "ls -l /snapshots/2/fs/etc"
echo
echo "+ ea_list /snapshots/2/fs/var/cache/demo   # the opaque marker containerd sets"
dbg "ea_list /snapshots/2/fs/var/cache/demo"
echo
echo "+ sbdisk verify $out   # reads the disk with libext2fs, recomputes GKE's checksums"
"$SBDISK" verify "$out"
echo
echo "+ tar -tvzf demo/demo.tar.gz   # what GCE imports: one sparse member, disk.raw"
tar --numeric-owner -tvzf demo/demo.tar.gz
echo
echo "Look inside: $SBDISK inspect $out"
echo "Mount it yourself (as root): mount -o loop,ro $out /mnt"
