# sbdisk inspect and sbdisk verify: a disk read back without mounting it,
# checked against what debugfs and the official verifier's own command see,
# and disks damaged with debugfs and dd refused with the damage named.
. "$(dirname "$0")/lib/common.sh"

demo="$REPO_DIR/examples/demo-image"
disk="$T/d.raw"
dbg() { debugfs -R "$1" "$2" 2>/dev/null; }
# copy DST: a fresh copy of the good disk to damage (holes stay holes)
copy() { cp --sparse=always "$disk" "$1"; }
# replace DISK DIR NAME SRC: DIR/NAME's content becomes SRC's, through debugfs
replace() {
  printf 'cd %s\nrm %s\nwrite %s %s\n' "$2" "$3" "$4" "$3" | debugfs -w -f - "$1" >/dev/null 2>&1
}
# refused NAME DISK REGEX: verify exits 4 with a line matching REGEX
refused() {
  local out rc
  out=$("$SBDISK" verify "$2" 2>&1); rc=$?
  if [ $rc = 4 ] && printf '%s\n' "$out" | grep -q "$3"; then ok "$1"; else fail "$1" "rc $rc: $out"; fi
}

if out=$("$SBDISK" build -q --cache-dir "$T/cache" -o "$disk" "oci:$demo" 2>&1); then
  ok "build the demo disk"
else
  fail "build the demo disk" "$out"; exit 1
fi
meta=$(dbg "cat /snapshots.metadata" "$disk")
n_snap=$(printf '%s\n' "$meta" | grep -c .)
[ "$n_snap" -ge 2 ] || { fail "demo disk has two snapshots" "$meta"; exit 1; }

# --- inspect ----------------------------------------------------------------------
if report=$("$SBDISK" inspect "$disk" 2>"$T/inspect.err"); then ok "inspect exits 0"; else fail "inspect exits 0" "$(cat "$T/inspect.err")"; fi
good=1
while read -r chain path sum; do
  printf '%s\n' "$report" | grep -qF "$chain" || { good=0; fail "inspect shows $path's chainID" "$chain missing"; }
  printf '%s\n' "$report" | grep -qF "$sum" || { good=0; fail "inspect shows $path's checksum" "$sum missing"; }
done <<<"$meta"
[ $good = 1 ] && ok "inspect shows every chainID and checksum of snapshots.metadata"
if [ -s "$T/inspect.err" ]; then fail "inspect warns of nothing on a good disk" "$(cat "$T/inspect.err")"; else ok "inspect warns of nothing on a good disk"; fi
ref=$(dbg "cat /images.metadata" "$disk" | awk 'NR==2{print $1}')
if printf '%s\n' "$report" | grep -q "^  $ref\$"; then ok "inspect lists the image $ref"; else fail "inspect lists the image" "$report"; fi

if "$SBDISK" inspect --json "$disk" >"$T/i.json" 2>"$T/json.err" && jq -e . "$T/i.json" >/dev/null; then
  ok "inspect --json is valid JSON"; else fail "inspect --json is valid JSON" "$(cat "$T/json.err")"; fi
# the JSON against debugfs: the chainIDs in order, the image table, the counts
if [ "$(jq -r '.snapshots[] | "\(.chain_id) \(.path) \(.checksum)"' "$T/i.json")" = "$meta" ]; then
  ok "JSON snapshots equal snapshots.metadata"; else fail "JSON snapshots equal snapshots.metadata" "$(jq -c .snapshots "$T/i.json")"; fi
if [ "$(jq -r '.images[0].ref' "$T/i.json")" = "$ref" ] &&
   [ "$(jq -r '.images[0].digest' "$T/i.json")" = "$(dbg "cat /images.metadata" "$disk" | awk 'NR==2{print $3}')" ]; then
  ok "JSON images equal images.metadata"; else fail "JSON images equal images.metadata" "$(jq -c .images "$T/i.json")"; fi
if [ "$(jq -r '[.snapshots[].images[]] | unique | .[]' "$T/i.json")" = "$ref" ]; then
  ok "JSON names the image using each snapshot"; else fail "JSON names the image using each snapshot" "$(jq -c '[.snapshots[].images]' "$T/i.json")"; fi

# the filesystem figures against dumpe2fs
dump=$(dumpe2fs -h "$disk" 2>/dev/null)
field() { printf '%s\n' "$dump" | sed -n "s/^$1: *//p"; }
want="$(field 'Block size') $(field 'Block count') $(field 'Free blocks') $(field 'Inode count') $(field 'Free inodes') $(field 'Filesystem UUID')"
got=$(jq -r '.filesystem | "\(.block_size) \(.blocks) \(.free_blocks) \(.inodes) \(.free_inodes) \(.uuid)"' "$T/i.json")
if [ "$got" = "$want" ]; then ok "JSON filesystem figures equal dumpe2fs's"; else fail "JSON filesystem figures equal dumpe2fs's" "got $got, dumpe2fs $want"; fi

# each snapshot dumped by debugfs, counted and checksummed by find and md5sum
verify_out=$("$SBDISK" verify "$disk" 2>&1); verify_rc=$?
while read -r chain path sum; do
  n=${path#snapshots/}; n=${n%/fs}
  mkdir -p "$T/r$n"
  debugfs -R "rdump /$path $T/r$n" "$disk" >/dev/null 2>&1
  files=$(find "$T/r$n/fs" -type f | wc -l)
  dirs=$(find "$T/r$n/fs" -mindepth 1 -type d | wc -l)
  jfiles=$(jq -r --arg p "$path" '.snapshots[] | select(.path == $p) | "\(.files) \(.directories)"' "$T/i.json")
  if [ "$jfiles" = "$files $dirs" ]; then ok "$path: JSON counts $files files, $dirs directories as find does";
  else fail "$path: JSON file and directory counts" "JSON $jfiles, find $files $dirs"; fi
  official=$(verifier_md5 "$T/r$n/fs")
  computed=$(printf '%s\n' "$verify_out" | sed -n "s|^$path: md5 \([0-9a-f]*\) ok.*|\1|p")
  if [ -n "$computed" ] && [ "$computed" = "$official" ]; then ok "$path: verify's md5 equals the official command's ($official)";
  else fail "$path: verify's md5 equals the official command's" "verify '$computed', official $official"; fi
done <<<"$meta"

# --- verify -------------------------------------------------------------------------
total=$(find "$T"/r*/fs -type f | wc -l)
if [ $verify_rc = 0 ] && printf '%s\n' "$verify_out" | tail -1 | grep -qx "OK: $n_snap snapshots, $total files checked"; then
  ok "verify passes the good disk: OK: $n_snap snapshots, $total files checked"
else fail "verify passes the good disk" "rc $verify_rc: $verify_out"; fi

# a file's content changed behind the metadata's back: a data block overwritten
victim=$(cd "$T/r1/fs" && find . -type f -size +0 | sort | head -1); victim=${victim#./}
copy "$T/bad1.raw"
blk=$(dbg "bmap /snapshots/1/fs/$victim 0" "$T/bad1.raw")
if [ -n "$victim" ] && [ "${blk:-0}" -gt 0 ] 2>/dev/null; then
  printf 'not what was unpacked' | dd of="$T/bad1.raw" bs=4096 seek="$blk" conv=notrunc status=none
  refused "verify names snapshots/1/fs when /$victim's block changes (exit 4)" "$T/bad1.raw" \
    "^snapshots/1/fs: md5 recorded $(printf '%s\n' "$meta" | awk 'NR==1{print $3}'), computed "
  refused "the untouched snapshots/2/fs still verifies" "$T/bad1.raw" "^snapshots/2/fs: md5 [0-9a-f]* ok"
else
  fail "find a data block to damage" "file '$victim', block '$blk'"
fi

# a file replaced through the filesystem (debugfs rm + write): same path, other bytes
copy "$T/bad2.raw"
printf 'other content\n' >"$T/other"
replace "$T/bad2.raw" "$(dirname "/snapshots/1/fs/$victim")" "$(basename "$victim")" "$T/other"
if [ "$(dbg "cat /snapshots/1/fs/$victim" "$T/bad2.raw")" = "other content" ]; then
  refused "verify names snapshots/1/fs when a file is rewritten (exit 4)" "$T/bad2.raw" '^snapshots/1/fs: md5 recorded'
else
  fail "debugfs rewrites /snapshots/1/fs/$victim" "$(dbg "cat /snapshots/1/fs/$victim" "$T/bad2.raw")"
fi

# a snapshot directory unlinked
copy "$T/bad3.raw"
debugfs -w -R 'unlink /snapshots/2' "$T/bad3.raw" >/dev/null 2>&1
refused "verify names snapshots/2/fs once it is unlinked (exit 4)" "$T/bad3.raw" \
  '^snapshots/2/fs: listed in snapshots.metadata but missing'

# a snapshot on the disk that snapshots.metadata does not list
copy "$T/bad4.raw"
head -1 <<<"$meta" >"$T/short.metadata"
replace "$T/bad4.raw" / snapshots.metadata "$T/short.metadata"
refused "verify names snapshots/2 when its line is gone (exit 4)" "$T/bad4.raw" '^snapshots/2: on the disk but not listed'

# images.metadata that does not parse
copy "$T/bad5.raw"
printf 'REF TYPE\n' >"$T/bad.images"
replace "$T/bad5.raw" / images.metadata "$T/bad.images"
refused "verify refuses an images.metadata that does not parse" "$T/bad5.raw" '^images.metadata line 1: '

# a disk from a build that did not record the images: "unknown"
copy "$T/old.raw"
debugfs -w -R 'ea_rm /snapshots/1 user.sbdisk.images' "$T/old.raw" >/dev/null 2>&1
if "$SBDISK" inspect "$T/old.raw" 2>&1 | grep -A4 '^  snapshots/1/fs$' | grep -q 'images     unknown' &&
   [ "$("$SBDISK" inspect --json "$T/old.raw" | jq -c '.snapshots[0].images')" = null ]; then
  ok "inspect says unknown where the build recorded no images"; else fail "inspect says unknown where no images are recorded" "$("$SBDISK" inspect "$T/old.raw" 2>&1)"; fi
check "verify still passes a disk without the record" "$SBDISK" verify "$T/old.raw"

# --- what is not a disk -------------------------------------------------------------------
head -c 1048576 /dev/urandom >"$T/noise.raw"
for cmd in inspect verify; do
  out=$("$SBDISK" $cmd "$T/noise.raw" 2>&1); rc=$?
  if [ $rc = 4 ] && printf '%s\n' "$out" | grep -q "$T/noise.raw holds no ext4 filesystem"; then
    ok "$cmd: a file of noise is no ext4 filesystem (exit 4)"; else fail "$cmd refuses noise" "rc $rc: $out"; fi
  out=$("$SBDISK" $cmd "$T/absent.raw" 2>&1); rc=$?
  if [ $rc = 2 ] && printf '%s\n' "$out" | grep -q "cannot open disk $T/absent.raw: No such file"; then
    ok "$cmd: a missing path (exit 2)"; else fail "$cmd refuses a missing path" "rc $rc: $out"; fi
done
mkfs.ext2 -q -F "$T/ext2.raw" 4M >/dev/null 2>&1
out=$("$SBDISK" verify "$T/ext2.raw" 2>&1); rc=$?
if [ $rc = 4 ] && printf '%s\n' "$out" | grep -q 'superblock: the extent feature is off' &&
   printf '%s\n' "$out" | grep -q 'snapshots.metadata: missing from the disk'; then
  ok "verify: an empty ext2 filesystem lacks extents and metadata"; else fail "verify refuses an empty ext2" "rc $rc: $out"; fi

# --- no root needed -----------------------------------------------------------------------
if is_root && command -v runuser >/dev/null && id nobody >/dev/null 2>&1; then
  chmod 755 "$T" && chmod 644 "$disk"
  if runuser -u nobody -- test -x "$SBDISK" -a -r "$disk"; then
    if out=$(runuser -u nobody -- "$SBDISK" verify "$disk" 2>&1) && printf '%s\n' "$out" | grep -q '^OK: '; then
      ok "verify runs as nobody (no root, no mount)"; else fail "verify runs as nobody" "$out"; fi
  else
    skip "verify as nobody" "nobody cannot reach $SBDISK or the disk"
  fi
elif ! is_root; then
  ok "these tests ran as $(id -un), not root"
else
  skip "verify as nobody" "no runuser or no user nobody"
fi
