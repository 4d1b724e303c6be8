# Scale: a layer with a 5 GiB file (zeros but for 1 MiB, so the blob stays
# small) and a directory of 100,000 entries streams through with bounded
# memory, and the result is correct: sizes and contents, the directory
# hash-indexed, e2fsck clean, zero blocks left as holes, and the verifier's
# checksum of the snapshot (the 5 GiB file's md5 among its 100,001).
. "$(dirname "$0")/lib/common.sh"
. "$TESTS_DIR/lib/layout.sh"

HUGE=5368709120           # 5 GiB
ISLAND_AT=4831838208      # 4.5 GiB
ISLAND_LEN=1048576
N=100000
RSS_LIMIT_KB=$((256 * 1024))

{
  echo "file huge 0644 0 0 1500000000 island:$HUGE:$ISLAND_AT:$ISLAND_LEN:7"
  echo "dir many 0755 0 0 1500000000"
  for ((i = 0; i < N; i++)); do printf 'file many/entry-%06d 0644 0 0 1500000000 text:%d\n' "$i" "$i"; done
} > "$T/scale.spec"
mkfifo "$T/tar.fifo"
sha256sum < "$T/tar.fifo" | cut -d' ' -f1 > "$T/diffid" &
hasher=$!
if ! "$TOOLS/mklayer" "$T/scale.spec" - | tee "$T/tar.fifo" | pigz -1 -n > "$T/layer.tar.gz"; then
  fail "generate the scale layer" "mklayer failed"; exit 1
fi
wait $hasher
layout_init "$T/layout"
layout_image_blobs "$T/layout" scale "$T/layer.tar.gz" "sha256:$(cat "$T/diffid")" >/dev/null ||
  { fail "generate the scale layer" "layout failed"; exit 1; }
ok "generate the scale layer ($(( $(stat -c%s "$T/layer.tar.gz") / 1024 / 1024 )) MiB blob)"

# Under ASan (make check SANITIZE=1) freed memory waits in a 256 MiB
# quarantine by default; a small one keeps the bound meaningful there too.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=16"
if ! out=$(/usr/bin/time -f '%M' -o "$T/rss" "$SBDISK" build -q --cache-dir "$T/cache" \
             -o "$T/disk.raw" "oci:$T/layout:scale" 2>&1); then
  fail "build" "$out"; exit 1
fi
ok "build"
rss=$(tail -1 "$T/rss")
if [ "$rss" -lt "$RSS_LIMIT_KB" ]; then ok "peak memory ${rss} KiB < 256 MiB"; else fail "peak memory" "${rss} KiB"; fi
check "e2fsck -fn clean" e2fsck -fn "$T/disk.raw"
alloc=$(( $(stat -c%b "$T/disk.raw") * 512 ))
if [ "$alloc" -lt $((600 * 1024 * 1024)) ]; then ok "zero blocks stay holes (disk file uses $((alloc / 1024 / 1024)) MiB)"
else fail "zero blocks stay holes" "the disk file uses $alloc bytes"; fi

dbg() { debugfs -R "$1" "$T/disk.raw" 2>/dev/null; }
size=$(dbg "stat /snapshots/1/fs/huge" | sed -n 's/.*Size: \([0-9]*\).*/\1/p' | head -1)
if [ "$size" = "$HUGE" ]; then ok "5 GiB file has its size"; else fail "5 GiB file has its size" "got $size"; fi
flags=$(dbg "stat /snapshots/1/fs/many" | sed -n 's/.*Flags: \(0x[0-9a-f]*\).*/\1/p' | head -1)
if [ $(( ${flags:-0} & 0x1000 )) -ne 0 ]; then ok "100,000-entry directory is hash-indexed"; else fail "100,000-entry directory is hash-indexed" "flags $flags"; fi

if is_root && mkdir -p "$T/mnt" && mount -o loop,ro "$T/disk.raw" "$T/mnt" 2>/dev/null; then
  on_exit "umount '$T/mnt'"
  want=$(pigz -dc "$T/layer.tar.gz" | tar -xOf - huge | sha256sum | cut -d' ' -f1)
  got=$(sha256sum < "$T/mnt/snapshots/1/fs/huge" | cut -d' ' -f1)
  if [ "$want" = "$got" ]; then ok "5 GiB file reads back identical"; else fail "5 GiB file reads back identical" "$got != $want"; fi
  sum=$(awk '$2 == "snapshots/1/fs" { print $3 }' "$T/mnt/snapshots.metadata")
  got=$(verifier_md5 "$T/mnt/snapshots/1/fs")
  if [ -n "$sum" ] && [ "$sum" = "$got" ]; then ok "verifier md5 of the snapshot"; else fail "verifier md5 of the snapshot" "metadata '$sum', files $got"; fi
  count=$(ls -f "$T/mnt/snapshots/1/fs/many" | grep -c '^entry-')
  if [ "$count" = "$N" ]; then ok "all $N entries listed"; else fail "all $N entries listed" "$count"; fi
  # the kernel finds names through the hash index; a wrong index loses them
  bad=0
  for ((i = 0; i < N; i += 97)); do
    name=$(printf 'entry-%06d' "$i")
    [ "$(cat "$T/mnt/snapshots/1/fs/many/$name" 2>/dev/null)" = "$i" ] || bad=$((bad + 1))
  done
  if [ $bad -eq 0 ]; then ok "lookups through the hash index"; else fail "lookups through the hash index" "$bad names not found"; fi
  umount "$T/mnt"
else
  skip "mounted checks" "needs root and loop devices"
fi
rm -f "$T/disk.raw" "$T/layer.tar.gz"

# --- a million files --------------------------------------------------------------
# More inodes than a 16 GiB disk has with 10% of them free: the size is
# chosen for the inodes, not the bytes.  (A disk that ends larger than the
# room it was first written in, and a build that outgrows its room, are
# reached with a small room in tests/unit/test_room.c.)
M=1000000
# What a file costs is mostly its node in the layer's tree and, at the
# layer's end, its md5 in the checksum's list: ~88 bytes here.  1,000,000
# files took 135,772 KiB (231,296 before the md5 queue ended chunks at 16,384
# files and the digests were sorted in place; 170,520 before a node kept only
# its own type's fields).  The bound keeps room for ~2.5 million files in one
# layer under 256 MiB; 30 more bytes a file would cross it.
MILLION_RSS_LIMIT_KB=$((160 * 1024))
python3 -c '
import sys
for d in range(1000):
    sys.stdout.write("dir d%03d 0755 0 0 1500000000\n" % d)
    for f in range(1000):
        sys.stdout.write("file d%03d/f%04d 0644 0 0 1500000000 empty\n" % (d, f))' > "$T/million.spec"
"$TOOLS/mklayer" "$T/million.spec" - | pigz -1 -n > "$T/million.tar.gz"
layout_image_blobs "$T/layout" million "$T/million.tar.gz" \
  "sha256:$(pigz -dc "$T/million.tar.gz" | sha256sum | cut -d' ' -f1)" >/dev/null ||
  { fail "generate the million-file layer" "layout failed"; exit 1; }
if ! out=$(/usr/bin/time -f '%M' -o "$T/rss" "$SBDISK" build -q --cache-dir "$T/cache" \
             -o "$T/million.raw" "oci:$T/layout:million" 2>&1); then
  fail "build $M files" "$out"; exit 1
fi
ok "build $M files"
rss=$(tail -1 "$T/rss")
if [ -n "${SBD_SANITIZE:-}" ]; then
  skip "peak memory with $M files" "sanitizer build (${rss} KiB)"
elif [ "$rss" -lt "$MILLION_RSS_LIMIT_KB" ]; then ok "peak memory with $M files: ${rss} KiB < 160 MiB"
else fail "peak memory with $M files" "${rss} KiB, over 160 MiB"; fi
check "$M files: e2fsck -fn clean" e2fsck -fn "$T/million.raw"
dump=$(dumpe2fs -h "$T/million.raw" 2>/dev/null)
inodes=$(sed -n 's/^Inode count: *//p' <<<"$dump")
free=$(sed -n 's/^Free inodes: *//p' <<<"$dump")
size=$(stat -c%s "$T/million.raw")
# 16 GiB holds 128 groups of 8192 inodes: 10% of them free is too few
if [ "$size" -gt $((16 << 30)) ] && [ $((inodes - free)) -ge $M ] && [ $((free * 10)) -ge "$inodes" ]; then
  ok "$M files: a $((size >> 30)) GiB disk with 10% of its inodes free"
else fail "$M files: sized for its inodes" "size $size, inodes $inodes, free $free"; fi
last=$(debugfs -R "ls -l /snapshots/1/fs/d999" "$T/million.raw" 2>/dev/null | grep -c ' f[0-9]\{4\}$')
if [ "$last" = 1000 ]; then ok "$M files: the last directory lists its 1000 files"
else fail "$M files: the last directory lists its 1000 files" "$last"; fi
