# sbdisk build from local OCI layouts: the demo image end to end, and every
# way a bad image must be refused (clear message, exit code, output intact).
. "$(dirname "$0")/lib/common.sh"

demo="$REPO_DIR/examples/demo-image"
cache="$T/cache"
sb() { "$SBDISK" build -q --cache-dir "$cache" "$@"; }
sha() { sha256sum "$1" | cut -d' ' -f1; }

# --- the demo image --------------------------------------------------------
if out=$(sb -o "$T/demo.raw" "oci:$demo:1.0" 2>&1); then ok "build demo image"; else fail "build demo image" "$out"; fi

size=$(stat -c%s "$T/demo.raw" 2>/dev/null || echo 0)
if [ "$size" -eq $((10 * 1024 * 1024 * 1024)) ]; then ok "default size is 10 GiB"; else fail "default size is 10 GiB" "got $size"; fi
alloc=$(( $(stat -c%b "$T/demo.raw") * 512 ))
if [ "$alloc" -lt $((200 * 1024 * 1024)) ]; then ok "disk file is sparse"; else fail "disk file is sparse" "$alloc bytes allocated"; fi
check "e2fsck -fn clean" e2fsck -fn "$T/demo.raw"

features=$(dumpe2fs -h "$T/demo.raw" 2>/dev/null | sed -n 's/^Filesystem features: *//p')
want="has_journal ext_attr resize_inode dir_index filetype extent 64bit flex_bg sparse_super large_file huge_file dir_nlink extra_isize metadata_csum"
if [ "$features" = "$want" ]; then ok "ext4 feature set"; else fail "ext4 feature set" "got: $features"; fi
bs=$(dumpe2fs -h "$T/demo.raw" 2>/dev/null | sed -n 's/^Block size: *//p')
if [ "$bs" = 4096 ]; then ok "4 KiB blocks"; else fail "4 KiB blocks" "got $bs"; fi
if [ "$(blkid -o value -s TYPE "$T/demo.raw")" = ext4 ]; then ok "blkid sees ext4"; else fail "blkid sees ext4"; fi

dbg() { debugfs -R "$1" "$T/demo.raw" 2>/dev/null; }
# chainIDs computed independently from the config's diff_ids
cfg=$(jq -r '.config.digest' "$demo/blobs/sha256/$(jq -r '.manifests[0].digest' "$demo/index.json" | cut -d: -f2)" | cut -d: -f2)
d1=$(jq -r '.rootfs.diff_ids[0]' "$demo/blobs/sha256/$cfg"); d2=$(jq -r '.rootfs.diff_ids[1]' "$demo/blobs/sha256/$cfg")
c2="sha256:$(printf '%s %s' "$d1" "$d2" | sha256sum | cut -d' ' -f1)"
meta=$(dbg "cat /snapshots.metadata")
if printf '%s\n' "$meta" | awk 'NR==1{print $1, $2} NR==2{print $1, $2}' | diff -q - <(printf '%s snapshots/1/fs\n%s snapshots/2/fs\n' "$d1" "$c2") >/dev/null; then
  ok "snapshots.metadata chainIDs"; else fail "snapshots.metadata chainIDs" "$meta"; fi
if dbg "cat /images.metadata" | head -1 | grep -q '^REF  *TYPE  *DIGEST  *SIZE  *PLATFORMS  *LABELS *$' &&
   dbg "cat /images.metadata" | grep -q '^docker.io/sbdisk/demo:1.0 .*linux/amd64 *io.cri-containerd.image=managed *$'; then
  ok "images.metadata table"; else fail "images.metadata table" "$(dbg 'cat /images.metadata')"; fi

if is_root && mkdir -p "$T/mnt" && mount -o loop,ro "$T/demo.raw" "$T/mnt" 2>/dev/null; then
  on_exit "umount '$T/mnt'"
  # the official verifier's checksum, recomputed by its own command
  good=1
  while read -r chain path sum; do
    got=$(verifier_md5 "$T/mnt/$path")
    [ "$got" = "$sum" ] || { good=0; fail "verifier md5 of $path" "metadata $sum, verifier $got"; }
  done < "$T/mnt/snapshots.metadata"
  [ $good = 1 ] && ok "verifier md5 matches snapshots.metadata"
  if [ "$(stat -c '%F %t:%T %a' "$T/mnt/snapshots/2/fs/etc/motd")" = "character special file 0:0 0" ]; then
    ok "whiteout is a 0:0 device"; else fail "whiteout is a 0:0 device" "$(stat -c '%F %t:%T %a' "$T/mnt/snapshots/2/fs/etc/motd")"; fi
  if [ "$(getfattr --only-values -n trusted.overlay.opaque "$T/mnt/snapshots/2/fs/var/cache/demo" 2>/dev/null)" = y ]; then
    ok "opaque directory marked"; else fail "opaque directory marked"; fi
  if [ "$(stat -c %i "$T/mnt/snapshots/1/fs/usr/bin/hello")" = "$(stat -c %i "$T/mnt/snapshots/1/fs/usr/bin/hello-again")" ]; then
    ok "hardlinks stay hardlinks"; else fail "hardlinks stay hardlinks"; fi
  umount "$T/mnt"
else
  skip "mounted checks" "needs root and loop devices"
fi

# --- refusing bad images ------------------------------------------------------
# relayout SRC DST [LAYER_INDEX NEW_BLOB] [DIFFID_INDEX NEW_DIFFID]: copies a
# one-image layout, optionally swapping a layer blob (manifest updated to
# match) or a config diff_id, and re-digests config/manifest/index.
relayout() {
  local src=$1 dst=$2 li=${3:-} blob=${4:-} di=${5:-} did=${6:-}
  rm -rf "$dst"; cp -r "$src" "$dst"
  local m c mf cf
  m=$(jq -r '.manifests[0].digest' "$dst/index.json" | cut -d: -f2)
  mf="$dst/blobs/sha256/$m"
  c=$(jq -r '.config.digest' "$mf" | cut -d: -f2); cf="$dst/blobs/sha256/$c"
  local man; man=$(cat "$mf")
  if [ -n "$li" ]; then
    local bd; bd=$(sha "$blob"); cp "$blob" "$dst/blobs/sha256/$bd"
    man=$(jq -c --argjson i "$li" --arg d "sha256:$bd" --argjson s "$(stat -c%s "$blob")" \
      '.layers[$i].digest=$d | .layers[$i].size=$s' <<<"$man")
  fi
  if [ -n "$di" ]; then
    jq -c --argjson i "$di" --arg d "$did" '.rootfs.diff_ids[$i]=$d' "$cf" > "$T/cfg.new"
    local nc; nc=$(sha "$T/cfg.new"); cp "$T/cfg.new" "$dst/blobs/sha256/$nc"
    man=$(jq -c --arg d "sha256:$nc" --argjson s "$(stat -c%s "$T/cfg.new")" '.config.digest=$d | .config.size=$s' <<<"$man")
  fi
  printf '%s' "$man" > "$T/man.new"
  local nm; nm=$(sha "$T/man.new"); cp "$T/man.new" "$dst/blobs/sha256/$nm"
  jq -c --arg d "sha256:$nm" --argjson s "$(stat -c%s "$T/man.new")" \
    '.manifests[0].digest=$d | .manifests[0].size=$s' "$src/index.json" > "$dst/index.json"
}

# expect_refusal NAME EXIT_CODE MESSAGE_REGEX sbdisk-args...
# The output path already holds a file: it must hold exactly that afterwards,
# with no temporary files left beside it.
expect_refusal() {
  local name=$1 code=$2 re=$3; shift 3
  local dir="$T/out-$RANDOM"; mkdir -p "$dir"
  printf 'previous disk\n' > "$dir/disk.raw"
  local msg rc
  msg=$(sb -o "$dir/disk.raw" "$@" 2>&1); rc=$?
  if [ "$rc" -ne "$code" ]; then fail "$name" "exit $rc, want $code: $msg"; return; fi
  if ! grep -Eq -- "$re" <<<"$msg"; then fail "$name" "message does not match /$re/: $msg"; return; fi
  if [ "$(cat "$dir/disk.raw")" != "previous disk" ]; then fail "$name" "the previous output was changed"; return; fi
  if [ "$(ls -A "$dir")" != "disk.raw" ]; then fail "$name" "left behind: $(ls -A "$dir" | tr '\n' ' ')"; return; fi
  ok "$name"
}

l1=$(jq -r '.layers[0].digest' "$demo/blobs/sha256/$(jq -r '.manifests[0].digest' "$demo/index.json" | cut -d: -f2)" | cut -d: -f2)
l2=$(jq -r '.layers[1].digest' "$demo/blobs/sha256/$(jq -r '.manifests[0].digest' "$demo/index.json" | cut -d: -f2)" | cut -d: -f2)

# a blob whose bytes are not what its digest says (the file name keeps the old digest)
cp -r "$demo" "$T/baddigest"
cp "$demo/blobs/sha256/$l1" "$T/baddigest/blobs/sha256/$l2"
expect_refusal "wrong blob digest is refused" 4 "image oci:.*baddigest:1.0: layer 2/2 \(sha256:$l2\):.*(digest mismatch|diffID mismatch)" "oci:$T/baddigest:1.0"

# a config whose diff_id does not match the layer
relayout "$demo" "$T/baddiff" "" "" 1 "sha256:$(printf x | sha256sum | cut -d' ' -f1)"
expect_refusal "diffID mismatch is refused" 4 "layer 2/2 .*diffID mismatch" "oci:$T/baddiff:1.0"

# a truncated layer (consistent digest, so the gzip stream itself is short)
head -c 300 "$demo/blobs/sha256/$l2" > "$T/short.gz"
relayout "$demo" "$T/truncated" 1 "$T/short.gz"
expect_refusal "truncated gzip layer is refused" 4 "layer 2/2 .*(truncated|unexpected end)" "oci:$T/truncated:1.0"

# a truncated tar inside a valid gzip stream
gzip -dc "$demo/blobs/sha256/$l1" | head -c 1536 | gzip -n > "$T/shorttar.gz"
relayout "$demo" "$T/shorttar" 0 "$T/shorttar.gz" 0 "sha256:$(gzip -dc "$T/shorttar.gz" | sha256sum | cut -d' ' -f1)"
expect_refusal "truncated tar is refused" 4 "layer 1/2 .*(runcated|unexpected end)" "oci:$T/shorttar:1.0"

# not gzip at all, under a gzip media type: containerd sniffs and reads it as a plain tar
printf 'garbage that is neither gzip nor tar' > "$T/garbage"
relayout "$demo" "$T/garbage-layout" 1 "$T/garbage" 1 "sha256:$(sha "$T/garbage")"
expect_refusal "garbage layer is refused" 4 "layer 2/2 .*tar" "oci:$T/garbage-layout:1.0"

expect_refusal "missing tag lists the tags" 4 'no image tagged "2.0".*1\.0' "oci:$demo:2.0"
expect_refusal "no images is a usage error" 2 "no images given"
expect_refusal "bad size is a usage error" 2 "whole number of GiB" --size 10.5G "oci:$demo:1.0"
expect_refusal "size below 10G is a usage error" 2 "below 10G" --size 5G "oci:$demo:1.0"
expect_refusal "bad reference is a usage error" 2 "Nginx" "Nginx:latest"
expect_refusal "malformed --platform is a usage error" 2 "platform" --platform "linux" "oci:$demo:1.0"

# an unwritable output directory is reported before anything is fetched
mkdir -p "$T/ro"; chmod 0555 "$T/ro"
if is_root; then
  skip "unwritable output directory" "root can write anywhere"
else
  msg=$(sb -o "$T/ro/disk.raw" "oci:$demo:1.0" 2>&1); rc=$?
  if [ $rc -eq 2 ] && grep -q "cannot write the output directory" <<<"$msg"; then ok "unwritable output directory"; else fail "unwritable output directory" "exit $rc: $msg"; fi
fi
msg=$(sb -o "$T/no/such/dir/disk.raw" "oci:$demo:1.0" 2>&1); rc=$?
if [ $rc -eq 2 ] && grep -q "cannot write the output directory $T/no/such/dir" <<<"$msg"; then
  ok "missing output directory is reported"; else fail "missing output directory is reported" "exit $rc: $msg"; fi
