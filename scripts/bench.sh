#!/bin/bash
# `make bench`: sbdisk against the reference procedures, side by side, on images
# it generates itself.  See BENCH.md for what is measured and how to read it.
#
#   scripts/bench.sh [--only NAME]... [--skip-official] [--skip-mke2fs]
#                    [--runs N] [--official-runs N] [--mke2fs-timeout SECONDS]
#                    [--work-dir DIR] [--clean]
#
# Images (generated once, kept in the work dir, pushed to a docker-registry on
# 127.0.0.1 whose storage is kept there too, so later runs start at once):
#   big         3 layers: a userland taken from this machine's /usr (~1.2 GB),
#               ~30k small text files (~0.2 GB), 1 GiB of AES-CTR keystream
#               ("weights": incompressible, reproducible); pigz -n
#   files-50k, files-100k, files-200k
#               one layer of N small files (100-4000 bytes), N/2 of them in a
#               single directory, the rest spread over 300 directories
#
# Per image, each from a cold start, one after the other:
#   floor     pigz -dc of the image's blobs into /dev/null
#   sbdisk    empty --cache-dir, pulling from the loopback registry, auto size;
#             wall time and peak RSS from /usr/bin/time
#   official  what gke-disk-image-builder does in its VM, minus the VM: a
#             private containerd with an empty root, ctr pull, mkfs.ext4 on a
#             sparse file of sbdisk's size, loop mount, cp -r -p of each
#             snapshot, the verifier's md5 per snapshot, images.metadata, umount
#   mke2fs    tar -xzf of every layer into one directory, then mke2fs -d into
#             a sparse file of the same size (under a timeout)
# sbdisk and the floor run --runs times (default 5: one image's sbdisk runs
# spread by 16% here, and the growth line divides two medians), the
# official procedure --official-runs times (default 3: the disk it is bound
# by is not equally fast from one minute to the next), each reporting the
# median and printing every run; tar + mke2fs -d runs once.
# sbdisk's disk is then checked (untimed): e2fsck -fn, and its
# snapshots.metadata md5s against the ones the official procedure computed.
#
# Environment: SBDISK (default build/sbdisk), SBDISK_BENCH_DIR (work dir,
# default ${TMPDIR:-/var/tmp}/sbdisk-bench), TMPDIR (scratch space for the
# disks and staging trees: several GB).
set -uo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
GEN="$REPO/scripts/bench/genlayer.py"
# Bump when the generators change: images made by another version are remade.
GEN_VERSION=1
ALL_IMAGES=(big files-50k files-100k files-200k)

usage() {
  sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'
}

ONLY=() SKIP_OFFICIAL=0 SKIP_MKE2FS=0 RUNS=5 OFFICIAL_RUNS=3 MKE2FS_TIMEOUT=900 CLEAN=0
WORK=${SBDISK_BENCH_DIR:-${TMPDIR:-/var/tmp}/sbdisk-bench}
while [ $# -gt 0 ]; do
  case $1 in
    --only) [ $# -ge 2 ] || { echo "bench: --only needs an image name" >&2; exit 2; }
            IFS=, read -r -a _o <<< "$2"; ONLY+=("${_o[@]}"); shift 2 ;;
    --only=*) IFS=, read -r -a _o <<< "${1#--only=}"; ONLY+=("${_o[@]}"); shift ;;
    --skip-official) SKIP_OFFICIAL=1; shift ;;
    --skip-mke2fs) SKIP_MKE2FS=1; shift ;;
    --runs) RUNS=${2:-}; shift 2 ;;
    --official-runs) OFFICIAL_RUNS=${2:-}; shift 2 ;;
    --mke2fs-timeout) MKE2FS_TIMEOUT=${2:-}; shift 2 ;;
    --work-dir) WORK=${2:-}; shift 2 ;;
    --clean) CLEAN=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "bench: --runs wants a positive number" >&2; exit 2; }
[[ $OFFICIAL_RUNS =~ ^[1-9][0-9]*$ ]] || { echo "bench: --official-runs wants a positive number" >&2; exit 2; }
[[ $MKE2FS_TIMEOUT =~ ^[1-9][0-9]*$ ]] || { echo "bench: --mke2fs-timeout wants seconds" >&2; exit 2; }
for i in "${ONLY[@]}"; do
  [[ " ${ALL_IMAGES[*]} " == *" $i "* ]] || { echo "bench: no image '$i' (there are: ${ALL_IMAGES[*]})" >&2; exit 2; }
done
IMAGES=("${ALL_IMAGES[@]}")
[ ${#ONLY[@]} -gt 0 ] && IMAGES=("${ONLY[@]}")

if [ "$CLEAN" = 1 ]; then
  if [ -d "$WORK" ]; then
    [ -f "$WORK/.sbdisk-bench" ] || { echo "bench: $WORK is not a bench work dir; not removing it" >&2; exit 1; }
    rm -rf "$WORK" && echo "bench: removed $WORK"
  else
    echo "bench: nothing to clean at $WORK"
  fi
  exit 0
fi

: "${SBDISK:=$REPO/build/sbdisk}"
[ -x "$SBDISK" ] || { echo "bench: no sbdisk at $SBDISK (make all)" >&2; exit 1; }
for c in pigz python3 jq curl docker-registry mke2fs e2fsck debugfs openssl /usr/bin/time timeout; do
  command -v "$c" >/dev/null || { echo "bench: $c is missing (make deps)" >&2; exit 1; }
done

# The integration-test helpers: scratch dir $T removed on exit with every
# process and mount they started.
. "$REPO/tests/integration/lib/common.sh"
. "$REPO/tests/integration/lib/registry.sh"
. "$REPO/tests/integration/lib/layout.sh"
. "$REPO/tests/integration/lib/containerd.sh"

log() { printf 'bench: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
ratio() {  # ratio A B: A/B with 2 decimals, "-" unless both are numbers
  if [[ $1 =~ ^[0-9.]+$ && $2 =~ ^[0-9.]+$ ]]; then
    awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'
  else echo "-"; fi
}
gb() { awk -v b="$1" 'BEGIN { printf "%.2f GB", b / 1e9 }'; }

mkdir -p "$WORK" || die "cannot create $WORK"
touch "$WORK/.sbdisk-bench"

# ---------------------------------------------------------------- generation

# _blob_from_stdin LAYOUT: compresses the tar on stdin with pigz -n straight
# into the layout's blob store; prints "BLOBPATH DIFFID TARBYTES ENTRIES FILEBYTES".
_blob_from_stdin() {
  local layout=$1 tmp hex st
  tmp=$(mktemp "$layout/blobs/sha256/.new.XXXXXX") || return 1
  pigz -n -c > "$tmp" || { rm -f "$tmp"; return 1; }
  st=$(pigz -dc "$tmp" | python3 "$GEN" stat) || { rm -f "$tmp"; return 1; }
  hex=$(sha256sum "$tmp" | cut -d' ' -f1) || return 1
  mv "$tmp" "$layout/blobs/sha256/$hex" || return 1
  echo "$layout/blobs/sha256/$hex $st"
}

# The userland layer: whole subtrees of /usr, in a fixed order, until about
# $1 bytes: /usr/bin and Python's library whole, then the entries of
# /usr/lib/x86_64-linux-gnu up to 3/4 of the budget, then /usr/share's; their
# parents are named too (_tar_usr), as a real image's tar names them.
_usr_selection() {
  local budget=$1 total=0 sz p c cap
  _usr_take() {  # _usr_take CAP PATH...: takes each PATH while the total is below CAP
    local cap=$1; shift
    [ $# -gt 0 ] || return 0
    while read -r sz p; do
      [ "$total" -ge "$cap" ] && break
      echo "$p"
      total=$((total + sz))
    done < <(cd / && du -s --apparent-size -B1 -- "$@" 2>/dev/null)
  }
  local first=(usr/bin)
  for p in /usr/lib/python3*; do [ -d "$p" ] && first+=("${p#/}"); done
  _usr_take "$budget" "${first[@]}"
  for p in usr/lib/x86_64-linux-gnu:$((budget * 3 / 4)) usr/share:$budget; do
    cap=${p#*:} p=${p%:*}
    [ -d "/$p" ] || continue
    local kids=()
    while IFS= read -r c; do kids+=("${c#/}"); done < <(find "/$p" -mindepth 1 -maxdepth 1 | LC_ALL=C sort)
    _usr_take "$cap" "${kids[@]}"
  done
}

_tar_usr() {
  local list=$1 parents=() rc
  mapfile -t sel < "$list"
  parents=(usr)
  local p
  for p in usr/lib usr/lib/x86_64-linux-gnu usr/share; do
    grep -q "^$p/" "$list" && parents+=("$p")
  done
  (cd / && tar --create --format=posix --pax-option=delete=atime,delete=ctime \
      --xattrs --xattrs-include='*' --sort=name --numeric-owner \
      --no-recursion "${parents[@]}" --recursion "${sel[@]}" -f -) 2> "$list.tar-warnings"
  rc=$?
  # 1 is GNU tar's "some files differed" (changed while read, sockets): fine here.
  [ $rc -le 1 ] || { cat "$list.tar-warnings" >&2; return $rc; }
}

_weights() {
  local bytes=$1
  # AES-256-CTR of zeros under a fixed key: incompressible like real weights,
  # identical on every run.
  head -c "$bytes" /dev/zero |
    openssl enc -aes-256-ctr -nosalt -K 5b0d15c0ffee5eed000000000000000000000000000000000000000000000001 \
      -iv 00000000000000000000000000000000 |
    python3 "$GEN" weights --bytes "$bytes" --shards 4 --root opt/models/bench-7b
}

# _params NAME: the generator's inputs for that image; a change remakes it.
_params() {
  case $1 in
    big) echo "v$GEN_VERSION usr=1200000000 small=30000x1024-12288/1200dirs seed=3 weights=1073741824" ;;
    files-*) local n=${1#files-}; n=${n%k}000
             echo "v$GEN_VERSION count=$n flat=$((n / 2)) dirs=300 size=100-4000 seed=$n" ;;
  esac
}

# _gen_layer NAME I: the I-th layer's tar of that image, on stdout.
_gen_layer() {
  local name=$1 i=$2 n
  case $name/$i in
    big/1) _tar_usr "$WORK/images/big/usr-selection" ;;
    big/2) python3 "$GEN" files --seed 3 --count 30000 --dirs 1200 --min 1024 --max 12288 \
             --root opt/app/lib/python3.11/site-packages ;;
    big/3) _weights 1073741824 ;;
    files-*/1) n=${name#files-}; n=${n%k}000
             python3 "$GEN" files --seed "$n" --count "$n" --flat $((n / 2)) --dirs 300 \
               --min 100 --max 4000 --root srv/data ;;
    *) echo "no layer $i in $name" >&2; return 1 ;;
  esac
}

# ensure_image NAME: generates the image's OCI layout unless an identical one is there.
ensure_image() {
  local name=$1 dir=$WORK/images/$1 params
  params=$(_params "$name")
  if [ -f "$dir/stamp" ] && [ "$(cat "$dir/stamp")" = "$params" ]; then return 0; fi
  log "$name: generating ($params); only the first run does this"
  rm -rf "$dir"; mkdir -p "$dir" || return 1
  layout_init "$dir/layout" || return 1
  local t0 layers=() line nentries=0 tarbytes=0 filebytes=0
  t0=$(now)
  local nlayers=1 i
  [ "$name" = big ] && { _usr_selection 1200000000 > "$dir/usr-selection" || return 1; nlayers=3; }
  for ((i = 1; i <= nlayers; i++)); do
    line=$(_gen_layer "$name" "$i" | _blob_from_stdin "$dir/layout") ||
      { log "$name: generating layer $i failed"; return 1; }
    # shellcheck disable=SC2086
    set -- $line
    layers+=("$1" "$2")
    tarbytes=$((tarbytes + $3)) nentries=$((nentries + $4)) filebytes=$((filebytes + $5))
    log "$name: layer $i: $(gb "$5") in $4 entries, $(gb "$(stat -c %s "$1")") gzip"
  done
  layout_image_blobs "$dir/layout" "$name" "${layers[@]}" > "$dir/manifest" || return 1
  printf 'entries=%s tarbytes=%s filebytes=%s layers=%s\n' "$nentries" "$tarbytes" "$filebytes" \
    $(( ${#layers[@]} / 2 )) > "$dir/info"
  echo "$params" > "$dir/stamp"
  log "$name: generated in $(elapsed "$t0" "$(now)") s"
}

info() { sed -n "s/.*\b$2=\([^ ]*\).*/\1/p" "$WORK/images/$1/info"; }
image_blobs() {  # the layer blobs of an image's layout, bottom first
  local dir=$WORK/images/$1/layout m
  m=$(cat "$WORK/images/$1/manifest")
  jq -r '.layers[].digest | ltrimstr("sha256:")' "$dir/blobs/sha256/${m#sha256:}" |
    sed "s|^|$dir/blobs/sha256/|"
}
gzip_bytes() { image_blobs "$1" | xargs stat -c %s | awk '{ s += $1 } END { print s }'; }

# ---------------------------------------------------------------- registry

# One registry for every run, its storage in the work dir: a later run finds
# the blobs there and layout_push_raw only checks for them.
start_registry() {
  local port dir=$WORK/registry
  mkdir -p "$dir" || return 1
  port=$(free_port) || return 1
  _registry_config "$dir" "$port"
  _registry_serve "$dir" "$port"
}

# push_image NAME: the layout, byte for byte, with layout_push_raw.  Layer
# blobs go first with a streaming upload (curl -T): layout_push_raw's
# --data-binary @FILE reads a blob into memory and curl refuses files over
# 1 GiB; it then finds them there and sends the config and manifest.
push_image() {
  local name=$1 repo=bench/$1 f hex base="http://$REGISTRY" loc sep
  for f in $(image_blobs "$name"); do
    hex=${f##*/}
    curl -sf -o /dev/null -I "$base/v2/$repo/blobs/sha256:$hex" && continue
    loc=$(curl -sf -o /dev/null -D - -X POST "$base/v2/$repo/blobs/uploads/" | tr -d '\r' |
          sed -n 's/^[Ll]ocation: //p')
    [ -n "$loc" ] || { log "$name: the registry gave no upload location"; return 1; }
    case $loc in /*) loc=$base$loc ;; esac
    case $loc in *\?*) sep='&' ;; *) sep='?' ;; esac
    curl -sf -o /dev/null -T "$f" -H 'Content-Type: application/octet-stream' \
      "$loc${sep}digest=sha256:$hex" || { log "$name: uploading blob sha256:$hex failed"; return 1; }
  done
  layout_push_raw "$WORK/images/$name/layout" "$name" "$repo:v1"
}

# Reading the registry's and the layout's copies of the blobs once puts every
# procedure on the same footing: all read them from the page cache.
warm() {
  local f hex
  for f in $(image_blobs "$1"); do
    hex=${f##*/}
    cat "$f" "$WORK/registry/data/docker/registry/v2/blobs/sha256/${hex:0:2}/$hex/data" > /dev/null 2>&1
  done
}

# ---------------------------------------------------------------- procedures
declare -A R  # R[image,key]

# settle: flushes what the previous step wrote and waits (at most 60 s) until
# the disk under $T has done nothing for 2 s.  Deleting the last step's GBs
# on a filesystem mounted with `discard`, and ext4 converting unwritten
# extents after writeback, otherwise go on during the next measurement.
SCRATCH_DEV=$(basename "$(findmnt -no SOURCE --target "$T" 2>/dev/null)" 2>/dev/null)
settle() {
  sync
  local prev="" cur quiet=0 i
  for ((i = 0; i < 120; i++)); do
    # reads, writes and discards completed (fields 4, 8, 15)
    cur=$(awk -v d="$SCRATCH_DEV" '$3 == d { print $4, $8, $15 }' /proc/diskstats)
    [ -n "$cur" ] || return 0
    if [ "$cur" = "$prev" ]; then quiet=$((quiet + 1)); [ $quiet -ge 4 ] && return 0; else quiet=0; fi
    prev=$cur
    sleep 0.5
  done
  log "the disk under $T was still busy after 60 s; measuring anyway"
}

median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

run_floor() {
  local name=$1 t0 t1 times=() i
  for ((i = 0; i < RUNS; i++)); do
    settle
    t0=$(now)
    # shellcheck disable=SC2046
    pigz -dc $(image_blobs "$name") > /dev/null || { R[$name,floor]=FAIL; return; }
    t1=$(now)
    times+=("$(elapsed "$t0" "$t1")")
  done
  R[$name,floor]=$(median "${times[@]}")
  log "$name: floor (pigz -dc): ${R[$name,floor]} s"
}

# sbdisk: wall time and peak RSS, an empty cache each time; keeps the last
# disk as $T/sbdisk.raw for the checks.
run_sbdisk() {
  local name=$1 ref=$REGISTRY/bench/$1:v1 cache=$T/sbdisk-cache out=$T/sbdisk.raw i rc
  local times=() rss=()
  for ((i = 0; i < RUNS; i++)); do
    rm -rf "$cache" "$out"; mkdir -p "$cache"
    settle
    timeout --kill-after=10 1800 /usr/bin/time -f '%e %M' -o "$T/sbdisk.time" \
      "$SBDISK" build -q --cache-dir "$cache" -o "$out" "$ref" > "$T/sbdisk.log" 2>&1
    rc=$?
    if [ $rc -ne 0 ]; then
      R[$name,sbdisk]=FAIL
      R[$name,sbdisk_err]="exit $rc: $(grep -v '^Command exited' "$T/sbdisk.log" | tail -3 | tr '\n' ' ')"
      [ $rc -eq 124 ] && R[$name,sbdisk]=timeout
      log "$name: sbdisk FAILED: ${R[$name,sbdisk_err]}"
      rm -rf "$cache"
      return 1
    fi
    read -r t m < "$T/sbdisk.time"
    times+=("$t"); rss+=("$m")
  done
  rm -rf "$cache"
  R[$name,sbdisk]=$(median "${times[@]}")
  R[$name,sbdisk_all]="${times[*]}"
  R[$name,rss]=$(( $(printf '%s\n' "${rss[@]}" | sort -n | tail -1) / 1024 ))
  R[$name,size]=$(stat -c %s "$out")
  log "$name: sbdisk: ${R[$name,sbdisk]} s (runs: ${times[*]}), peak RSS ${R[$name,rss]} MiB, disk $(( R[$name,size] >> 30 )) GiB"
}

# The disk size every procedure uses: sbdisk's choice, or its documented rule
# (content + 10%, whole GiB, at least 10 GiB) when sbdisk failed.
disk_size() {
  local name=$1
  if [ -n "${R[$name,size]:-}" ]; then echo "${R[$name,size]}"; return; fi
  awk -v b="$(info "$name" tarbytes)" 'BEGIN { g = int(b * 1.1 / 2^30) + 1; if (g < 10) g = 10; printf "%d", g * 2^30 }'
}

OFFICIAL_SKIP=""
probe_official() {
  if [ "$SKIP_OFFICIAL" = 1 ]; then OFFICIAL_SKIP="--skip-official"; return; fi
  is_root || { OFFICIAL_SKIP="needs root (containerd, loop mounts)"; return; }
  if ! command -v containerd >/dev/null || ! command -v ctr >/dev/null; then
    OFFICIAL_SKIP="containerd/ctr not installed"; return
  fi
  local img=$T/loop-probe.img mnt=$T/loop-probe
  mkdir -p "$mnt"; truncate -s 64M "$img"
  if mkfs.ext4 -q -F "$img" >/dev/null 2>&1 && mount -o loop "$img" "$mnt" 2>/dev/null; then
    umount "$mnt"
  else
    OFFICIAL_SKIP="loop mounts do not work here"
  fi
  rm -rf "$img" "$mnt"
}

# The official procedure's steps, as its VM runs them (output in $T/official.metadata).
_official_steps() {
  local ref=$1 img=$2 mnt=$3 top chain id dir n md5
  top=$(containerd_pull "$ref") || return 1
  mkfs.ext4 -q -F -m 0 -E lazy_itable_init=0,lazy_journal_init=0,discard "$img" || return 1
  mount -o loop "$img" "$mnt" || return 1
  mkdir "$mnt/snapshots" || return 1
  chain=$(containerd_chain "$top") || return 1
  for id in $chain; do
    dir=$(containerd_snapshot_dir "$id") || return 1
    n=$(basename "$(dirname "$dir")")
    mkdir -p "$mnt/snapshots/$n" || return 1
    cp -r -p "$dir" "$mnt/snapshots/$n/fs" || return 1
    md5=$(find "$mnt/snapshots/$n/fs" -type f -exec md5sum {} + | cut -d' ' -f1 | LC_ALL=C sort | md5sum | cut -d' ' -f1) || return 1
    echo "$id snapshots/$n/fs $md5" >> "$mnt/snapshots.metadata" || return 1
  done
  containerd_images_ls > "$mnt/images.metadata" || return 1
  cp "$mnt/snapshots.metadata" "$T/official.metadata" || return 1
  umount "$mnt"
}

# The official procedure, timed from the pull to the umount, in a containerd
# with an empty root.
# One run of the official procedure, from an empty containerd: its time in
# OFFICIAL_T, and $T/official.metadata.  Returns 2 when containerd cannot run.
official_once() {
  local ref=$1 size=$2 img=$T/official.raw mnt=$T/official-mnt t0 t1 rc
  rm -rf "$T/containerd" "$img" "$T/official.metadata"; mkdir -p "$mnt"
  if ! containerd_start >/dev/null 2>"$T/containerd.err"; then
    echo "containerd: $(tail -1 "$T/containerd.err")" > "$T/official.err"; return 2
  fi
  truncate -s "$size" "$img"
  settle
  t0=$(now)
  _official_steps "$ref" "$img" "$mnt" 2> "$T/official.err"
  rc=$?
  t1=$(now)
  mountpoint -q "$mnt" && umount "$mnt"
  containerd_stop
  rm -rf "$T/containerd" "$img" "$mnt"
  [ $rc -eq 0 ] || return 1
  OFFICIAL_T=$(elapsed "$t0" "$t1")
}

# The official procedure is bound by the disk, whose speed moves from one
# minute to the next more than sbdisk's CPU does: median of OFFICIAL_RUNS.
run_official() {
  local name=$1 ref=$REGISTRY/bench/$1:v1 size times=() i rc
  size=$(disk_size "$name")
  for ((i = 0; i < OFFICIAL_RUNS; i++)); do
    official_once "$ref" "$size"; rc=$?
    if [ $rc -eq 2 ]; then
      R[$name,official]=skip; R[$name,official_err]=$(cat "$T/official.err")
      log "$name: official skipped: ${R[$name,official_err]}"; return 1
    elif [ $rc -ne 0 ]; then
      R[$name,official]=FAIL; R[$name,official_err]=$(tail -2 "$T/official.err" | tr '\n' ' ')
      log "$name: official procedure FAILED: ${R[$name,official_err]}"
      rm -f "$T/official.metadata"; return 1
    fi
    times+=("$OFFICIAL_T")
  done
  R[$name,official]=$(median "${times[@]}")
  R[$name,official_all]="${times[*]}"
  log "$name: official procedure: ${R[$name,official]} s (runs: ${times[*]})"
}

run_mke2fs() {
  local name=$1 size img=$T/mke2fs.raw stage=$T/mke2fs-stage rc t0 t1
  size=$(disk_size "$name")
  rm -rf "$stage" "$img" "$T/mke2fs.mark"; mkdir -p "$stage"; truncate -s "$size" "$img"
  settle
  t0=$(now)
  # shellcheck disable=SC2046,SC2016
  timeout --kill-after=10 "$MKE2FS_TIMEOUT" bash -c '
    stage=$1 img=$2 mark=$3; shift 3
    for b in "$@"; do
      tar -C "$stage" --xattrs --xattrs-include="*" --numeric-owner -xzf "$b" || exit 1
    done
    date +%s.%N > "$mark"
    mke2fs -q -F -t ext4 -m 0 -d "$stage" "$img"' _ "$stage" "$img" "$T/mke2fs.mark" $(image_blobs "$name") \
    > "$T/mke2fs.err" 2>&1
  rc=$?
  t1=$(now)
  case $rc in
    0) R[$name,mke2fs]=$(elapsed "$t0" "$t1")
       R[$name,mke2fs_only]=$(elapsed "$(cat "$T/mke2fs.mark")" "$t1")
       log "$name: tar + mke2fs -d: ${R[$name,mke2fs]} s (mke2fs -d alone ${R[$name,mke2fs_only]} s)" ;;
    124|137) R[$name,mke2fs]="timeout"
             if [ -s "$T/mke2fs.mark" ]; then
               R[$name,mke2fs_err]="stopped after ${MKE2FS_TIMEOUT} s, $(elapsed "$(cat "$T/mke2fs.mark")" "$t1") s of them in mke2fs -d"
             else
               R[$name,mke2fs_err]="stopped after ${MKE2FS_TIMEOUT} s, still extracting"
             fi
             log "$name: tar + mke2fs -d: timeout (${R[$name,mke2fs_err]})" ;;
    *) R[$name,mke2fs]=FAIL; R[$name,mke2fs_err]=$(tail -2 "$T/mke2fs.err" | tr '\n' ' ')
       log "$name: tar + mke2fs -d FAILED: ${R[$name,mke2fs_err]}" ;;
  esac
  rm -rf "$stage" "$img" "$T/mke2fs.mark"
}

# Untimed: is sbdisk's disk clean, and does it hold what containerd unpacked
# (the verifier's md5 of every snapshot, by chainID)?
verify_sbdisk() {
  local name=$1 out=$T/sbdisk.raw v
  [ -f "$out" ] || { R[$name,verified]="-"; return; }
  if e2fsck -fn "$out" > "$T/e2fsck.log" 2>&1; then v="fsck clean"; else v="FSCK ERRORS"; fi
  if [ -f "$T/official.metadata" ]; then
    if diff <(awk '{ print $1, $3 }' "$T/official.metadata" | sort) \
            <(debugfs -R 'cat /snapshots.metadata' "$out" 2>/dev/null | awk '{ print $1, $3 }' | sort) >/dev/null; then
      v="$v, md5 = containerd's"
    else
      v="$v, MD5 DIFFERS from containerd's"
    fi
  fi
  R[$name,verified]=$v
  rm -f "$out" "$T/official.metadata"
}

# ---------------------------------------------------------------- main
for name in "${IMAGES[@]}"; do
  ensure_image "$name" || die "$name: could not generate the image"
done
start_registry || die "the registry did not start"
for name in "${IMAGES[@]}"; do
  push_image "$name" || die "$name: push failed"
done
probe_official
[ -n "$OFFICIAL_SKIP" ] && log "official procedure skipped: $OFFICIAL_SKIP"
SKIP_MKE2FS_WHY=
[ "$SKIP_MKE2FS" = 1 ] && SKIP_MKE2FS_WHY="--skip-mke2fs"
is_root || SKIP_MKE2FS_WHY="needs root (tar keeps owners and xattrs only as root)"

REV=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -n "$(git -C "$REPO" --no-optional-locks status --porcelain --untracked-files=no 2>/dev/null)" ] && REV="$REV+uncommitted"
CPU=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
MACHINE="$(nproc) cores, $CPU, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 2^20 }' /proc/meminfo), kernel $(uname -r), load before: $(cut -d' ' -f1-3 /proc/loadavg)"
START=$(now)

for name in "${IMAGES[@]}"; do
  log "$name: measuring"
  warm "$name"
  run_floor "$name"
  run_sbdisk "$name"
  if [ -z "$OFFICIAL_SKIP" ]; then run_official "$name"; else R[$name,official]=skip; fi
  if [ -z "$SKIP_MKE2FS_WHY" ]; then run_mke2fs "$name"; else R[$name,mke2fs]=skip; fi
  verify_sbdisk "$name"
done

# ---------------------------------------------------------------- report
table() {
  echo "| image | layers | entries | unpacked | gzip | disk | sbdisk s | official s | tar+mke2fs -d s (mke2fs alone) | pigz -dc floor s | sbdisk/floor | official/sbdisk | mke2fs/sbdisk | sbdisk peak RSS | sbdisk's disk |"
  echo "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|"
  local n s
  for n in "${IMAGES[@]}"; do
    s=${R[$n,sbdisk]:--}
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
      "$n" "$(info "$n" layers)" "$(info "$n" entries)" "$(gb "$(info "$n" filebytes)")" \
      "$(gb "$(gzip_bytes "$n")")" "$(( $(disk_size "$n") >> 30 )) GiB" \
      "$s" "${R[$n,official]:--}" "${R[$n,mke2fs]:--}${R[$n,mke2fs_only]:+ (${R[$n,mke2fs_only]})}" "${R[$n,floor]:--}" \
      "$(ratio "$s" "${R[$n,floor]:-}")" "$(ratio "${R[$n,official]:-}" "$s")" \
      "$(ratio "${R[$n,mke2fs]:-}" "$s")" "${R[$n,rss]:--}${R[$n,rss]:+ MiB}" "${R[$n,verified]:--}"
  done
}
# every_run KEY RUNS LABEL: each image's runs, when there was more than one.
every_run() {
  local key=$1 runs=$2 label=$3 n lines=()
  [ "$runs" -gt 1 ] || return 0
  for n in "${IMAGES[@]}"; do
    [ -n "${R[$n,${key}_all]:-}" ] && lines+=("- $n: ${R[$n,${key}_all]}")
  done
  [ ${#lines[@]} -gt 0 ] || return 0
  printf '\nEvery run of %s, s:\n' "$label"
  printf '%s\n' "${lines[@]}"
}
growth() {
  local key=$1 label=$2 a b c
  a=${R[files-50k,$key]:-} b=${R[files-100k,$key]:-} c=${R[files-200k,$key]:-}
  local have=0 x
  for x in "$a" "$b" "$c"; do [ -n "$x" ] && have=$((have + 1)); done
  [ $have -ge 2 ] || return 0
  printf -- '- %s: 50k→100k ×%s, 100k→200k ×%s (%s s, %s s, %s s)\n' "$label" \
    "$(ratio "$b" "$a")" "$(ratio "$c" "$b")" "${a:--}" "${b:--}" "${c:--}"
}

{
  table
  echo
  echo "Machine: $MACHINE. sbdisk $REV ($(date -u +%Y-%m-%d)); $RUNS run(s) each for sbdisk and the floor, $OFFICIAL_RUNS of the official procedure (medians); whole bench $(elapsed "$START" "$(now)") s."
  if [[ " ${IMAGES[*]} " == *" files-"* ]]; then
    echo
    echo "Growth of the time as the number of files doubles (2.00 = linear):"
    growth sbdisk sbdisk
    growth official official
    growth mke2fs "tar+mke2fs -d"
    growth mke2fs_only "mke2fs -d alone"
  fi
  every_run sbdisk "$RUNS" sbdisk
  every_run official "$OFFICIAL_RUNS" "the official procedure"
  notes=()
  [ -n "$OFFICIAL_SKIP" ] && notes+=("official procedure skipped: $OFFICIAL_SKIP")
  [ -n "$SKIP_MKE2FS_WHY" ] && notes+=("tar+mke2fs -d skipped: $SKIP_MKE2FS_WHY")
  for n in "${IMAGES[@]}"; do
    for k in sbdisk official mke2fs; do
      [ -n "${R[$n,${k}_err]:-}" ] && notes+=("$n, $k: ${R[$n,${k}_err]}")
    done
  done
  if [ ${#notes[@]} -gt 0 ]; then
    echo
    printf -- '- %s\n' "${notes[@]}"
  fi
} | tee "$T/table.md"
mkdir -p "$WORK/results"
cp "$T/table.md" "$WORK/results/$(date -u +%Y%m%dT%H%M%SZ).md"
