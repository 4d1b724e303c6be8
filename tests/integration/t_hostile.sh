# Hostile images, built here from specs and bytes we control: every one must
# end with exit code of its class, one message naming the image and the layer
# (and the tar entry where there is one), the previous file at -o byte for
# byte as it was, and no temporary file left beside it or in the cache.
# What containerd itself decides (escapes, duplicates, replaced directories,
# entries it refuses) lives in lib/corpus.sh and t_refuse.sh, checked against
# the real daemon; this file holds what is sbdisk's to refuse.
. "$(dirname "$0")/lib/common.sh"
. "$TESTS_DIR/lib/registry.sh"
. "$TESTS_DIR/lib/layout.sh"

cache=$T/cache
L=$T/layout
layout_init "$L"
sha() { sha256sum "$1" | cut -d' ' -f1; }
blobfile() { echo "$L/blobs/sha256/${1#sha256:}"; }

# spec NAME LINES...: NAME.tar from mklayer.
spec() {
  local name=$1; shift
  printf '%s\n' "$@" > "$T/$name.spec"
  "$TOOLS/mklayer" "$T/$name.spec" "$T/$name.tar" 2>/dev/null
}

# blob_image TAG MEDIA-TYPE BLOB DIFFID [BLOB-MEDIA-TYPE...]: a one-layer image
# in $L from a blob exactly as given (bytes, media type, diffID).
blob_image() {
  local tag=$1 mt=$2 blob=$3 diff=$4 digest desc
  digest=$(layout_add_blob "$L" "$blob") || return 1
  desc=$(jq -cn --arg mt "$mt" --arg d "$digest" --argjson s "$(stat -c%s "$blob")" \
    '{mediaType: $mt, digest: $d, size: $s}')
  _layout_write_image "$L" "$tag" '{"architecture":"amd64","os":"linux"}' oci 1 "$diff" "$desc" >/dev/null
}

# edit_manifest TAG JQ-FILTER [CONFIG-JQ-FILTER]: rewrites TAG's manifest (and
# its config) through jq, re-digesting everything above.
edit_manifest() {
  local tag=$1 filter=$2 cfilter=${3:-.} m man cfg nc
  m=$(jq -r --arg t "$tag" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t) | .digest' "$L/index.json")
  man=$(cat "$(blobfile "$m")")
  cfg=$(jq -r '.config.digest' <<<"$man")
  nc=$(layout_add_json "$L" "$(jq -c "$cfilter" "$(blobfile "$cfg")")") || return 1
  man=$(jq -c --arg d "$nc" --argjson s "$(stat -c%s "$(blobfile "$nc")")" \
    ".config.digest = \$d | .config.size = \$s | $filter" <<<"$man") || return 1
  m=$(layout_add_json "$L" "$man") || return 1
  _layout_tag "$L" "$tag" "$(jq -cn --arg d "$m" --argjson s "$(stat -c%s "$(blobfile "$m")")" \
    '{mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $d, size: $s,
      platform: {architecture: "amd64", os: "linux"}}')"
}

# refused NAME CODE REGEX ARGS...: sbdisk build ARGS must exit CODE with a
# message matching REGEX, leave -o's previous content and nothing else.
refused() {
  local name=$1 code=$2 re=$3; shift 3
  local dir="$T/out-$RANDOM$RANDOM"; mkdir -p "$dir"
  head -c 4096 /dev/urandom > "$dir/disk.raw"
  local before msg rc
  before=$(sha "$dir/disk.raw")
  msg=$("$SBDISK" build -q --cache-dir "$cache" -o "$dir/disk.raw" "$@" 2>&1); rc=$?
  if [ "$rc" -ne "$code" ]; then fail "$name" "exit $rc, want $code: $msg"; return 1; fi
  if [ "$(grep -c . <<<"$msg")" != 1 ] || ! grep -Eq -- "^sbdisk: error: $re" <<<"$msg"; then
    fail "$name" "message is not one line matching /$re/: $msg"; return 1; fi
  if [ "$(sha "$dir/disk.raw")" != "$before" ]; then fail "$name" "the previous output was changed"; return 1; fi
  if [ "$(ls -A "$dir")" != disk.raw ]; then fail "$name" "left beside the output: $(ls -A "$dir" | tr '\n' ' ')"; return 1; fi
  local junk
  junk=$(find "$cache" -name '*.tmp' -o -name '.*' -type f 2>/dev/null | head -3)
  if [ -n "$junk" ]; then fail "$name" "left in the cache: $junk"; return 1; fi
  ok "$name"
  [ -n "${VERBOSE:-}" ] && echo "   $msg"
  return 0
}

L1() { echo "layer 1/1 \\(sha256:[0-9a-f]{64}\\)"; }
img() { echo "image oci:$L:$1: $(L1)"; }
R() { printf 'oci:%s:%s' "$L" "$1"; }

spec good 'dir etc 0755 0 0 1500000000' 'file etc/motd 0644 0 0 1500000000 rand:200000:1' \
  'file etc/second 0644 0 0 1500000000 text:second' || { fail "mklayer"; exit 1; }
good_diff=sha256:$(sha "$T/good.tar")
gzip -n -c "$T/good.tar" > "$T/good.tar.gz"
zstd -q -c "$T/good.tar" > "$T/good.tar.zst"
GZ=application/vnd.oci.image.layer.v1.tar+gzip
ZS=application/vnd.oci.image.layer.v1.tar+zstd
TAR=application/vnd.oci.image.layer.v1.tar

# --- layers ---------------------------------------------------------------------
blob_image diffid "$GZ" "$T/good.tar.gz" "sha256:$(printf other | sha256sum | cut -d' ' -f1)"
refused "layer: diffID mismatch" 4 "$(img diffid): .*diffID mismatch" "$(R diffid)"

head -c 2000 "$T/good.tar.gz" > "$T/short.gz"
blob_image gzshort "$GZ" "$T/short.gz" "$good_diff"
refused "layer: truncated gzip" 4 "$(img gzshort): .*(truncated|unexpected end)" "$(R gzshort)"

# bytes changed in the middle of the deflate stream: the blob digest matches
# (it is of the changed bytes), the stream's own check must not
python3 - "$T/good.tar.gz" "$T/corrupt.gz" <<'PY'
import sys
b = bytearray(open(sys.argv[1], 'rb').read())
for i in range(len(b) // 2, len(b) // 2 + 16):
    b[i] ^= 0x55
open(sys.argv[2], 'wb').write(b)
PY
blob_image gzcorrupt "$GZ" "$T/corrupt.gz" "$good_diff"
refused "layer: corrupt gzip" 4 "$(img gzcorrupt): " "$(R gzcorrupt)"

head -c 2000 "$T/good.tar.zst" > "$T/short.zst"
blob_image zstshort "$ZS" "$T/short.zst" "$good_diff"
refused "layer: truncated zstd" 4 "$(img zstshort): .*(truncated|unexpected end)" "$(R zstshort)"

python3 - "$T/good.tar.zst" "$T/corrupt.zst" <<'PY'
import sys
b = bytearray(open(sys.argv[1], 'rb').read())
for i in range(len(b) // 2, len(b) // 2 + 16):
    b[i] ^= 0x55
open(sys.argv[2], 'wb').write(b)
PY
blob_image zstcorrupt "$ZS" "$T/corrupt.zst" "$good_diff"
refused "layer: corrupt zstd" 4 "$(img zstcorrupt): " "$(R zstcorrupt)"

# tar_patch IN OUT PYTHON: OUT is IN with the change, header checksums redone
# for every header the change touched unless the change says otherwise.
tar_patch() {
  python3 - "$1" "$2" "$3" <<'PY'
import sys
data = bytearray(open(sys.argv[1], 'rb').read())
def header_at(name):
    """Offset of the ustar header whose name field is `name`."""
    off = 0
    while off + 512 <= len(data):
        n = bytes(data[off:off + 100]).rstrip(b'\0')
        if n == name:
            return off
        size = int(bytes(data[off + 124:off + 136]).strip(b'\0 ') or b'0', 8)
        off += 512 + (size + 511) // 512 * 512
    sys.exit('no header %r' % name)
def fix_checksum(off):
    data[off + 148:off + 156] = b' ' * 8
    s = sum(data[off:off + 512])
    data[off + 148:off + 156] = b'%06o\0 ' % s
exec(sys.argv[3])
open(sys.argv[2], 'wb').write(data)
PY
}
printf '%s\n' 'dir etc 0755 0 0 1500000000' 'file etc/motd 0644 0 0 1500000000 rand:20000:1' \
  'file etc/second 0644 0 0 1500000000 text:second' > "$T/plain.spec"
"$TOOLS/mklayer" --format ustar "$T/plain.spec" "$T/plain.tar" || { fail "mklayer ustar"; exit 1; }

# a tar that ends inside a file's data
head -c 8000 "$T/plain.tar" > "$T/cut.tar"
blob_image tarcut "$TAR" "$T/cut.tar" "sha256:$(sha "$T/cut.tar")"
refused "layer: tar ends inside an entry" 4 "$(img tarcut): .*etc/motd.*(runcated|unexpected end|premature)" "$(R tarcut)"

# a header whose checksum is wrong
tar_patch "$T/plain.tar" "$T/badsum.tar" "o = header_at(b'etc/second'); data[o + 148:o + 156] = b'0000000\0'"
blob_image badsum "$TAR" "$T/badsum.tar" "sha256:$(sha "$T/badsum.tar")"
refused "layer: invalid header (checksum)" 4 "$(img badsum): the header after entry etc/motd: .*(Damaged|checksum)" "$(R badsum)"

# a header whose size field is not a number
tar_patch "$T/plain.tar" "$T/badsize.tar" "o = header_at(b'etc/second'); data[o + 124:o + 136] = b'zzzzzzzzzzz\0'; fix_checksum(o)"
blob_image badsize "$TAR" "$T/badsize.tar" "sha256:$(sha "$T/badsize.tar")"
refused "layer: invalid header (size field)" 4 "$(img badsize): the header after entry etc/(motd|second): .*Damaged" "$(R badsize)"

# absurd sizes: 64 GiB of data claimed by an entry with 6 bytes behind it
# (octal), and 2^62 bytes (base-256)
tar_patch "$T/plain.tar" "$T/huge.tar" "o = header_at(b'etc/second'); data[o + 124:o + 136] = b'%011o\0' % (64 << 30); fix_checksum(o)"
blob_image huge "$TAR" "$T/huge.tar" "sha256:$(sha "$T/huge.tar")"
refused "layer: absurd size (64 GiB claimed)" 4 "$(img huge): .*entry etc/second" "$(R huge)"
tar_patch "$T/plain.tar" "$T/huge256.tar" "o = header_at(b'etc/second'); data[o + 124:o + 136] = b'\x80' + (1 << 62).to_bytes(11, 'big'); fix_checksum(o)"
blob_image huge256 "$TAR" "$T/huge256.tar" "sha256:$(sha "$T/huge256.tar")"
refused "layer: absurd size (2^62 bytes, base-256)" 4 "$(img huge256): .*entry etc/second" "$(R huge256)"


# --- manifests and indexes ------------------------------------------------------
blob_image base "$GZ" "$T/good.tar.gz" "$good_diff"
if out=$("$SBDISK" build -q --cache-dir "$cache" -o "$T/base.raw" "$(R base)" 2>&1); then
  ok "the unchanged image builds (what the cases below change)"
else fail "the unchanged image builds" "$out"; fi

# a layout whose blob file holds other bytes than its name says, bytes that
# are corrupt gzip too: the digest is the cause to report, not the gzip error
cp -r "$L" "$T/L2"
gd=$(jq -r '.layers[0].digest' "$(blobfile "$(jq -r '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == "base") | .digest' "$L/index.json")")")
cp "$T/corrupt.gz" "$T/L2/blobs/sha256/${gd#sha256:}"
refused "layer: blob digest mismatch (corrupt gzip under a good name)" 4 \
  "image oci:$T/L2:base: layer 1/1 \\($gd\\): blob digest mismatch: expected $gd, got sha256:$(sha "$T/corrupt.gz")$" "oci:$T/L2:base"

# copy_tag FROM TO: TO names what FROM names.
copy_tag() { _layout_tag "$L" "$2" "$(jq -c --arg t "$1" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t) | del(.annotations)' "$L/index.json")"; }
copy_tag base layermt
edit_manifest layermt '.layers[0].mediaType = "application/vnd.example.unknown.layer"'
refused "manifest: unknown layer media type" 4 \
  "image $(R layermt): layer 1 \\(sha256:[0-9a-f]{64}\\) has media type application/vnd.example.unknown.layer" "$(R layermt)"

copy_tag base ownmt
edit_manifest ownmt '.mediaType = "application/vnd.oci.image.index.v1+json"'
refused "manifest: its own media type is not a manifest's" 4 "image $(R ownmt): .*mediaType" "$(R ownmt)"

copy_tag base schema3
edit_manifest schema3 '.schemaVersion = 3'
refused "manifest: unknown schema version" 4 "image $(R schema3): .*schemaVersion.*3" "$(R schema3)"

copy_tag base nolayers
edit_manifest nolayers '.layers = []' '.rootfs.diff_ids = []'
refused "manifest: an image with no layers" 4 "image $(R nolayers): .*no layers" "$(R nolayers)"

# a non-distributable (foreign) layer the layout does not hold: only its URLs have it
copy_tag base foreign
edit_manifest foreign '.layers[0].mediaType = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip" |
  .layers[0].digest = "sha256:'"$(printf foreign | sha256sum | cut -d' ' -f1)"'" |
  .layers[0].urls = ["https://foreign.example/layer.tar.gz"]'
refused "manifest: non-distributable layer that is not there" 4 \
  "image $(R foreign): $(L1): a non-distributable \\(foreign\\) layer, .*not from its URLs \\(https://foreign.example/layer.tar.gz\\): the layout has no blob sha256:[0-9a-f]{64}: No such file" "$(R foreign)"

# an index without the platform asked for: the message lists those it has
arm=$(spec arm 'file arch 0644 0 0 1500000000 text:arm64' && layout_image "$L" arm --platform linux/arm64/v8 "$T/arm.tar:gzip")
amd=$(jq -r '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == "base") | .digest' "$L/index.json")
layout_index "$L" multi "$amd" "$arm" >/dev/null
refused "index: missing platform lists the platforms" 4 \
  "image $(R multi): no manifest for platform linux/s390x; the index has: linux/amd64, linux/arm64/v8$" --platform linux/s390x "$(R multi)"

# --- registry: digest mismatches, and the cache left clean -----------------------
if registry_start --foreign-urls && layout_push_raw "$L" base hostile/blob:v1 && layout_push_raw "$L" base hostile/manifest:v1; then
  stored() { echo "$REGISTRY_DIR/data/docker/registry/v2/blobs/sha256/${1:7:2}/${1#sha256:}/data"; }
  lb=$(jq -r '.layers[0].digest' "$(blobfile "$amd")")
  # A registry serves what it stored without hashing it again.
  printf 'X' | dd of="$(stored "$lb")" bs=1 seek=100 conv=notrunc status=none
  refused "registry: layer blob digest mismatch" 4 \
    "image $REGISTRY/hostile/blob:v1: layer 1/1 \\($lb\\): .*does not match its digest" "$REGISTRY/hostile/blob:v1"
  if [ -z "$(ls -A "$cache/blobs/sha256" 2>/dev/null | grep "${lb#sha256:}")" ]; then ok "registry: the corrupt blob is not cached"
  else fail "registry: the corrupt blob is not cached" "$(ls -A "$cache/blobs/sha256")"; fi
  # a foreign layer the registry does not hold (as published: only its URLs
  # have it; distribution accepts such a manifest without the blob)
  if layout_push_raw "$L" foreign hostile/foreign:v1 2>/dev/null; then
    refused "registry: non-distributable layer the registry does not hold" 4 \
      "image $REGISTRY/hostile/foreign:v1: layer 1/1 \\(sha256:[0-9a-f]{64}\\): a non-distributable \\(foreign\\) layer, .*not from its URLs \\(https://foreign.example/layer.tar.gz\\): .*" \
      "$REGISTRY/hostile/foreign:v1"
  else fail "registry: non-distributable layer the registry does not hold" "the registry refused the manifest"; fi
  printf '\n' >> "$(stored "$amd")"
  refused "registry: manifest digest mismatch when pulled by digest" 4 \
    "image $REGISTRY/hostile/manifest@$amd: .*does not match its digest" "$REGISTRY/hostile/manifest@$amd"
else
  fail "registry cases" "docker-registry did not start or the push failed"
fi

# --- containerd refuses the same layers -------------------------------------------
# The layer cases above are sbdisk's own refusals (mklayer cannot write them,
# so they are not in the corpus): the real containerd, pulling the same
# images, must fail on each as well, or sbdisk would refuse an image GKE's
# own builder turns into a disk.
. "$TESTS_DIR/lib/containerd.sh"
LAYER_CASES=(diffid gzshort gzcorrupt zstshort zstcorrupt tarcut badsum badsize huge huge256)
if ! is_root; then
  skip "containerd refuses the same layers" "needs root"
elif [ -z "${REGISTRY:-}" ]; then
  skip "containerd refuses the same layers" "no registry"
else
  containerd_start; rc=$?
  if [ $rc -eq 2 ]; then
    skip "containerd refuses the same layers" "$CONTAINERD_SKIP"
  elif [ $rc -ne 0 ]; then
    fail "containerd refuses the same layers" "containerd did not start"
  else
    for tag in "${LAYER_CASES[@]}"; do
      if ! layout_push_raw "$L" "$tag" "hostile/$tag:v1" >/dev/null 2>&1; then
        fail "containerd refuses $tag too" "push failed"; continue
      fi
      if out=$(containerd_pull "$REGISTRY/hostile/$tag:v1" 2>&1); then
        fail "containerd refuses $tag too" "containerd pulled and unpacked it: $out"
      else
        ok "containerd refuses $tag too (...$(tail -1 <<<"$out" | rev | cut -c1-70 | rev))"
      fi
    done
  fi
fi

# --- out of space ---------------------------------------------------------------
# 700,000 empty files: more inodes than a 10 GiB disk has (80 groups of
# 8192), fewer than 11 GiB's.
python3 -c '
import sys
for d in range(700):
    for f in range(1000):
        sys.stdout.write("file d%03d/f%04d 0644 0 0 1500000000 empty\n" % (d, f))' > "$T/many.spec"
"$TOOLS/mklayer" "$T/many.spec" - | gzip -1 -n > "$T/many.tar.gz"
layout_image_blobs "$L" many "$T/many.tar.gz" "sha256:$(gzip -dc "$T/many.tar.gz" | sha256sum | cut -d' ' -f1)" >/dev/null
inodes10=$(( (10 << 30) / (128 << 20) * 8192 ))
if refused "space: out of inodes at --size 10G ($inodes10 inodes) names the size that fits" 5 \
  "the content needs at least 11 GiB and does not fit the 10 GiB of --size .*: $(img many): entry d[0-9]+/f[0-9]+: .*no free inodes" \
  --size 10G "$(R many)"; then
  if out=$("$SBDISK" build -q --cache-dir "$cache" --size 11G -o "$T/many.raw" "$(R many)" 2>&1) &&
     [ "$(dumpe2fs -h "$T/many.raw" 2>/dev/null | sed -n 's/^Inode count: *//p')" -ge 700000 ]; then
    ok "space: --size 11G, the size named, holds it"
  else fail "space: --size 11G, the size named, holds it" "$out"; fi
  # Without -q: the pass that only measures the size reports no layer as
  # written (the layer never fit).
  out=$("$SBDISK" build --cache-dir "$cache" --size 10G -o "$T/many.raw" "$(R many)" 2>&1)
  if ! grep -q 'snapshots/1/fs' <<<"$out" && grep -q 'needs at least 11 GiB' <<<"$out"; then
    ok "space: the measuring pass prints no layer lines"
  else fail "space: the measuring pass prints no layer lines" "$(tail -3 <<<"$out")"; fi
fi
rm -f "$T/many.raw"

# The filesystem under -o fills up while the content is written (an 8 MiB
# tmpfs, 20 MB of random data): an I/O error naming the layer and what could
# not be written, the previous file intact, no temporary file left there.
if is_root && mkdir -p "$T/small" && mount -t tmpfs -o size=8m tmpfs "$T/small" 2>/dev/null; then
  on_exit "umount '$T/small' 2>/dev/null"
  spec fill 'file data 0644 0 0 1500000000 rand:20000000:1'
  gzip -1 -n -c "$T/fill.tar" > "$T/fill.tar.gz"
  blob_image fill "$GZ" "$T/fill.tar.gz" "sha256:$(sha "$T/fill.tar")"
  head -c 4096 /dev/urandom > "$T/small/disk.raw"
  before=$(sha "$T/small/disk.raw")
  msg=$("$SBDISK" build -q --cache-dir "$cache" -o "$T/small/disk.raw" "$(R fill)" 2>&1); rc=$?
  if [ $rc -eq 1 ] && [ "$(grep -c . <<<"$msg")" = 1 ] &&
     grep -Eq "^sbdisk: error: $(img fill): .*writing $T/small/\.disk\.raw\.[A-Za-z0-9]+\.tmp: No space left on device$" <<<"$msg" &&
     [ "$(sha "$T/small/disk.raw")" = "$before" ] && [ "$(ls -A "$T/small")" = disk.raw ]; then
    ok "space: the filesystem under -o fills up"
  else
    fail "space: the filesystem under -o fills up" "exit $rc, left: $(ls -A "$T/small" | tr '\n' ' '), $msg"
  fi
  umount "$T/small"
else
  skip "space: the filesystem under -o fills up" "needs root to mount a small tmpfs"
fi

# Blocks: only more than 10 GiB of data (zero blocks are holes) overflows the
# smallest disk, so this case writes 10 GiB three times: opt-in.
if [ -n "${SBDISK_TEST_BIG:-}" ]; then
  # one file of 10 GiB of 0x01 bytes: a tiny zstd blob, a full disk
  python3 - $((10 << 30)) <<'PY' | zstd -1 -q -c > "$T/fill.tar.zst"
import io, sys, tarfile
class Ones(io.RawIOBase):
    def __init__(self, n): self.left = n
    def readable(self): return True
    def readinto(self, b):
        k = min(len(b), self.left); b[:k] = b'\x01' * k; self.left -= k; return k
ti = tarfile.TarInfo('fill'); ti.size = int(sys.argv[1]); ti.mtime = 1500000000; ti.mode = 0o644
with tarfile.open(fileobj=sys.stdout.buffer, mode='w|', format=tarfile.PAX_FORMAT) as t:
    t.addfile(ti, io.BufferedReader(Ones(ti.size), 1 << 20))
PY
  blob_image fill "$ZS" "$T/fill.tar.zst" "sha256:$(zstd -dc "$T/fill.tar.zst" | sha256sum | cut -d' ' -f1)"
  if refused "space: out of blocks at --size 10G names the size that fits" 5 \
    "the content needs at least 11 GiB and does not fit the 10 GiB of --size .*: $(img fill): entry fill: .*no free blocks" \
    --size 10G "$(R fill)"; then
    if out=$("$SBDISK" build -q --cache-dir "$cache" --size 11G -o "$T/fill.raw" "$(R fill)" 2>&1); then
      ok "space: --size 11G, the size named, holds the 10 GiB file"
    else fail "space: --size 11G, the size named, holds the 10 GiB file" "$out"; fi
  fi
  rm -f "$T/fill.raw"
else
  skip "space: out of blocks at --size 10G" "writes 10 GiB three times; set SBDISK_TEST_BIG=1"
fi

# --- the output path ------------------------------------------------------------
# Checked before anything is fetched: the registry below does not exist, so
# reaching it would be exit 3.
dead=127.0.0.1:$(free_port)/x:1
mkdir -p "$T/ro"
if chattr +i "$T/ro" 2>/dev/null; then
  on_exit "chattr -i '$T/ro'"
  msg=$("$SBDISK" build -q --cache-dir "$cache" -o "$T/ro/disk.raw" "$dead" 2>&1); rc=$?
  if [ $rc -eq 2 ] && grep -q "cannot write the output directory $T/ro" <<<"$msg" && [ -z "$(ls -A "$T/ro")" ]; then
    ok "output: unwritable directory (immutable), before any download"
  else fail "output: unwritable directory (immutable), before any download" "exit $rc: $msg"; fi
  chattr -i "$T/ro"
else
  skip "output: unwritable directory" "chattr +i not possible here"
fi
mkdir -p "$T/isdir/disk.raw"
msg=$("$SBDISK" build -q --cache-dir "$cache" -o "$T/isdir/disk.raw" "$dead" 2>&1); rc=$?
if [ $rc -eq 2 ] && grep -q "$T/isdir/disk.raw" <<<"$msg" && [ -d "$T/isdir/disk.raw" ] && [ "$(ls -A "$T/isdir")" = disk.raw ]; then
  ok "output: -o names a directory, before any download"
else fail "output: -o names a directory, before any download" "exit $rc: $msg"; fi
