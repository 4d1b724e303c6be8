#!/bin/bash
# Regenerates examples/demo-image, the small OCI image layout `make demo`
# builds a disk from (no network needed).  Deterministic: the same script
# gives the same bytes, so the committed layout can be checked against it.
#   scripts/make-example-image.sh [OUTDIR]
set -euo pipefail
out=${1:-"$(cd "$(dirname "$0")/.." && pwd)/examples/demo-image"}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export LC_ALL=C TZ=UTC
umask 022
mtime="2024-01-01 00:00:00"

tarball() { # DIR OUT.tar
  tar --format=pax --sort=name --mtime="$mtime" --owner=0 --group=0 --numeric-owner \
      --pax-option='exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime' \
      -C "$1" -cf "$2" .
}

# Layer 1: a tiny "base system".
b="$work/base"
mkdir -p "$b/etc" "$b/usr/bin" "$b/usr/share/demo" "$b/var/cache/demo" "$b/tmp"
printf 'NAME="sbdisk demo"\nID=demo\nVERSION_ID=1.0\n' > "$b/etc/os-release"
printf '#!/bin/sh\necho "hello from a GKE secondary boot disk"\n' > "$b/usr/bin/hello"
chmod 0755 "$b/usr/bin/hello"
ln -s hello "$b/usr/bin/hi"
ln "$b/usr/bin/hello" "$b/usr/bin/hello-again"
printf 'stale\n' > "$b/var/cache/demo/old-1" && printf 'stale\n' > "$b/var/cache/demo/old-2"
printf 'remove me\n' > "$b/etc/motd"
chmod 1777 "$b/tmp"
for i in $(seq -w 1 40); do printf 'file %s\n' "$i" > "$b/usr/share/demo/doc-$i.txt"; done

# Layer 2: an application layer that deletes and replaces things.
a="$work/app"
mkdir -p "$a/etc" "$a/app" "$a/var/cache/demo"
printf 'model weights would live here\n' > "$a/app/weights.bin"
printf '{"name":"demo"}\n' > "$a/app/config.json"
: > "$a/etc/.wh.motd"                       # whiteout: /etc/motd is deleted
: > "$a/var/cache/demo/.wh..wh..opq"        # opaque: the old cache is hidden
printf 'fresh\n' > "$a/var/cache/demo/new"

tarball "$b" "$work/l1.tar"
tarball "$a" "$work/l2.tar"
gzip -n -9 -c "$work/l1.tar" > "$work/l1.tar.gz"
gzip -n -9 -c "$work/l2.tar" > "$work/l2.tar.gz"

rm -rf "$out"
mkdir -p "$out/blobs/sha256"
sha() { sha256sum "$1" | cut -d' ' -f1; }
add() { local d; d=$(sha "$1"); cp "$1" "$out/blobs/sha256/$d"; echo "$d"; }
l1=$(add "$work/l1.tar.gz"); l2=$(add "$work/l2.tar.gz")
d1=$(sha "$work/l1.tar"); d2=$(sha "$work/l2.tar")
s1=$(stat -c%s "$work/l1.tar.gz"); s2=$(stat -c%s "$work/l2.tar.gz")

printf '{"architecture":"amd64","os":"linux","created":"2024-01-01T00:00:00Z","config":{"Cmd":["/usr/bin/hello"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s","sha256:%s"]}}' \
  "$d1" "$d2" > "$work/config.json"
c=$(add "$work/config.json"); cs=$(stat -c%s "$work/config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s},{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' \
  "$c" "$cs" "$l1" "$s1" "$l2" "$s2" > "$work/manifest.json"
m=$(add "$work/manifest.json"); ms=$(stat -c%s "$work/manifest.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"docker.io/sbdisk/demo:1.0","org.opencontainers.image.ref.name":"1.0"}}]}\n' \
  "$m" "$ms" > "$out/index.json"
printf '{"imageLayoutVersion":"1.0.0"}\n' > "$out/oci-layout"
echo "wrote $out (manifest sha256:$m)"
