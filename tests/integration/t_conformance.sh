# Conformance: every snapshot sbdisk writes must be what containerd's own
# overlayfs snapshotter unpacks for the same chainID — names, types, modes,
# owners, sizes, contents, symlink targets, devices, xattrs, hardlink groups
# and mtimes (except where containerd stamps the time of extraction).  The
# corpus (lib/corpus.sh) covers every entry kind and applier rule.
. "$(dirname "$0")/lib/common.sh"
. "$TESTS_DIR/lib/registry.sh"
. "$TESTS_DIR/lib/layout.sh"
. "$TESTS_DIR/lib/corpus.sh"
. "$TESTS_DIR/lib/containerd.sh"

if ! is_root; then skip "conformance" "needs root (containerd, loop mounts)"; exit 0; fi
registry_start || { fail "conformance: registry" "docker-registry did not start"; exit 1; }
corpus_build "$T/corpus" || { fail "conformance: corpus" "corpus_build failed"; exit 1; }
corpus_push || { fail "conformance: corpus" "corpus_push failed"; exit 1; }
containerd_start; rc=$?
if [ $rc -eq 2 ]; then skip "conformance" "$CONTAINERD_SKIP"; exit 0; fi
[ $rc -eq 0 ] || { fail "conformance: containerd" "did not start"; exit 1; }
reference_pull_all || { fail "conformance: reference pulls" "ctr pull failed"; exit 1; }
reference_dump_all "$T/ref" || { fail "conformance: reference dumps" "failed"; exit 1; }
start=$REFERENCE_START

for platform in $(awk '{print $2}' "$T/ref/images.txt" | sort -u); do
  tag=${platform//\//-}
  mapfile -t refs < <(awk -v p="$platform" '$2 == p { print $1 }' "$T/ref/images.txt")
  disk="$T/disk-$tag.raw"
  # containerd stamps the moment it unpacks; sbdisk stamps SOURCE_DATE_EPOCH
  # (by default the images' creation time, which this corpus keeps in the past).
  if ! out=$(SOURCE_DATE_EPOCH=$(date +%s) "$SBDISK" build -q --cache-dir "$T/cache" --platform "$platform" -o "$disk" "${refs[@]}" 2>&1); then
    fail "sbdisk build ($platform, ${#refs[@]} images)" "$out"; continue
  fi
  ok "sbdisk build ($platform, ${#refs[@]} images)"
  check "e2fsck -fn clean ($platform)" e2fsck -fn "$disk"

  mnt="$T/mnt-$tag"; mkdir -p "$mnt"
  if ! mount -o loop,ro "$disk" "$mnt" 2>"$T/mount.err"; then
    fail "kernel mounts the disk ($platform)" "$(cat "$T/mount.err")"; continue
  fi
  on_exit "umount '$mnt'"
  ok "kernel mounts the disk ($platform)"

  # Which chainIDs the images need (from containerd) and which the disk has.
  awk -v p="$platform" '$2 == p { for (i = 3; i <= NF; i++) print $i }' "$T/ref/images.txt" | sort -u > "$T/want-$tag"
  awk '{ print $1 }' "$mnt/snapshots.metadata" | sort > "$T/have-$tag"
  if diff -q "$T/want-$tag" "$T/have-$tag" >/dev/null && [ "$(sort -u "$T/have-$tag" | wc -l)" = "$(wc -l < "$T/have-$tag")" ]; then
    ok "one snapshot per unique chainID ($platform, $(wc -l < "$T/have-$tag") snapshots)"
  else
    fail "one snapshot per unique chainID ($platform)" "$(diff "$T/want-$tag" "$T/have-$tag" | tr '\n' ' ')"
  fi

  n=0
  while read -r chain path sum; do
    n=$((n + 1))
    if [ "$path" != "snapshots/$n/fs" ]; then fail "snapshot numbering" "line $n names $path"; fi
    name="snapshot $chain ($platform)"
    if ! "$TOOLS/treedump" --stamped-after "$start" "$mnt/$path" > "$T/ours-$tag-$n.txt" 2>"$T/td.err"; then
      fail "$name" "treedump: $(cat "$T/td.err")"; continue
    fi
    if [ ! -f "$T/ref/$chain.txt" ]; then fail "$name" "containerd has no such snapshot"; continue; fi
    if diff -u "$T/ref/$chain.txt" "$T/ours-$tag-$n.txt" > "$T/diff.txt"; then
      ok "$name identical to containerd ($(wc -l < "$T/ref/$chain.txt") entries)"
    else
      fail "$name" "differs from containerd (- containerd, + sbdisk): $(grep '^[-+][^-+]' "$T/diff.txt" | head -6 | tr '\n' ' ')"
    fi
    got=$(verifier_md5 "$mnt/$path")
    ref=$(verifier_md5 "$(containerd_snapshot_dir "$chain")")
    if [ "$got" = "$sum" ] && [ "$ref" = "$sum" ]; then ok "$name verifier md5"; else
      fail "$name verifier md5" "metadata $sum, verifier on sbdisk $got, on containerd $ref"; fi
  done < "$mnt/snapshots.metadata"

  # images.metadata holds ctr's rows for these images.  Column widths depend
  # on every row ctr lists, so rows are compared field by field; sizes are
  # ctr's for its own platform, so only where that is this disk's.
  if [ "$platform" = linux/amd64 ]; then
    containerd_images_ls > "$T/ctr-ls.txt"
    good=1
    for r in "${refs[@]}"; do
      want=$(awk -v r="$r" '$1 == r' "$T/ctr-ls.txt" | tr -s ' ')
      have=$(awk -v r="$r" '$1 == r' "$mnt/images.metadata" | tr -s ' ')
      if [ -z "$want" ] || [ "$want" != "$have" ]; then good=0; fail "images.metadata row for $r" "ctr: '$want' sbdisk: '$have'"; fi
    done
    hdr=$(head -1 "$mnt/images.metadata" | tr -s ' ')
    [ "$hdr" = "$(head -1 "$T/ctr-ls.txt" | tr -s ' ')" ] || { good=0; fail "images.metadata header" "$hdr"; }
    [ $good = 1 ] && ok "images.metadata rows equal ctr images ls ($platform)"
  fi
  umount "$mnt"
done
