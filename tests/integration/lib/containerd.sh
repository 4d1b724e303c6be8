# The reference: Debian's containerd on a private socket, root and state under
# $T, pulling with ctr exactly as the official disk builder does.  What its
# overlayfs snapshotter leaves in snapshots/N/fs is what sbdisk must reproduce.
#   . lib/common.sh; . lib/containerd.sh
#
#   containerd_start          start it; returns 2 (reason in $CONTAINERD_SKIP and
#                             on stderr) when it cannot run here: not root, no
#                             overlay mounts, no containerd.  Stopped, and every
#                             mount under $T undone, when the test exits.
#   containerd_ctr ARGS...    ctr against it, namespace k8s.io
#   containerd_pull REF [--platform OS/ARCH[/VARIANT]]
#                             ctr images pull --plain-http, labelled as the CRI
#                             plugin labels its images; prints the top chainID
#   containerd_chain CHAINID  the chainIDs from the bottom layer up to CHAINID,
#                             one a line, read from the snapshotter's parents
#   containerd_snapshot_dir CHAINID
#                             the directory of that committed snapshot
#                             (ROOT/io.containerd.snapshotter.v1.overlayfs/snapshots/N/fs)
#   containerd_snapshots      every committed snapshot's chainID, one a line
#   containerd_images_ls      ctr -n k8s.io images ls (what images.metadata holds)
#
# How chainIDs are found: `ctr images pull --print-chainid` names the top one;
# each committed snapshot's Parent (ctr snapshots info) names the one below.
# They equal layout_chain_ids (lib/layout.sh) computed from the config's
# diff_ids; t_reference checks that.

CONTAINERD_NS=k8s.io

# _containerd_overlay_works DIR: can this kernel and filesystem mount overlay?
_containerd_overlay_works() {
  local d=$1 rc
  mkdir -p "$d/lower" "$d/upper" "$d/work" "$d/merged" || return 1
  mount -t overlay overlay -o "lowerdir=$d/lower,upperdir=$d/upper,workdir=$d/work" "$d/merged" 2>/dev/null
  rc=$?
  [ $rc -eq 0 ] && umount "$d/merged"
  rm -rf "$d"
  return $rc
}

containerd_start() {
  CONTAINERD_SKIP=
  if ! is_root; then
    CONTAINERD_SKIP="containerd needs root (overlay mounts, mknod, trusted.* xattrs)"
  elif ! command -v containerd >/dev/null || ! command -v ctr >/dev/null; then
    CONTAINERD_SKIP="containerd or ctr not installed (apt-get install containerd)"
  elif ! _containerd_overlay_works "$T/overlay-probe"; then
    CONTAINERD_SKIP="overlay mounts do not work under $T"
  fi
  if [ -n "$CONTAINERD_SKIP" ]; then
    echo "$CONTAINERD_SKIP" >&2
    return 2
  fi

  local dir=$T/containerd
  mkdir -p "$dir/root" "$dir/state" "$dir/opt" || return 1
  CONTAINERD_DIR=$dir
  CONTAINERD_ROOT=$dir/root
  CONTAINERD_SOCK=$dir/containerd.sock
  cat > "$dir/config.toml" <<TOML
version = 2
root = "$dir/root"
state = "$dir/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "$CONTAINERD_SOCK"
[ttrpc]
  address = "$CONTAINERD_SOCK.ttrpc"
[debug]
  address = "$dir/debug.sock"
  level = "info"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$dir/opt"
TOML
  # Stop it and undo its mounts on exit, whatever happens to the test.
  on_exit containerd_stop
  containerd --config "$dir/config.toml" > "$dir/log" 2>&1 &
  CONTAINERD_PID=$!
  bg_register "$CONTAINERD_PID"

  local i
  for ((i = 0; i < 300; i++)); do
    if ! kill -0 "$CONTAINERD_PID" 2>/dev/null; then
      echo "containerd exited at start:" >&2; tail -20 "$dir/log" >&2
      return 1
    fi
    ctr --address "$CONTAINERD_SOCK" version >/dev/null 2>&1 && break
    sleep 0.1
  done
  if [ "$i" -eq 300 ]; then
    echo "containerd did not answer on $CONTAINERD_SOCK:" >&2; tail -20 "$dir/log" >&2
    return 1
  fi
  # The listing first, then grep: under pipefail (make bench), grep -q
  # leaving at its first match can fail ctr's write with SIGPIPE, and the
  # pipeline with it, though the line says ok.
  local plugins
  plugins=$(containerd_ctr plugins ls 2>&1)
  if ! grep -q 'io.containerd.snapshotter.v1 *overlayfs .* ok' <<<"$plugins"; then
    CONTAINERD_SKIP="containerd's overlayfs snapshotter did not load: $(grep overlayfs <<<"$plugins")"
    echo "$CONTAINERD_SKIP" >&2
    return 2
  fi
  export CONTAINERD_DIR CONTAINERD_ROOT CONTAINERD_SOCK CONTAINERD_PID
}

# Stops containerd (TERM, then KILL after 10 s) and unmounts whatever is still
# mounted under $T, deepest first.
containerd_stop() {
  local i m
  if [ -n "${CONTAINERD_PID:-}" ] && kill -0 "$CONTAINERD_PID" 2>/dev/null; then
    kill "$CONTAINERD_PID" 2>/dev/null
    for ((i = 0; i < 100; i++)); do
      kill -0 "$CONTAINERD_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -0 "$CONTAINERD_PID" 2>/dev/null && kill -KILL "$CONTAINERD_PID" 2>/dev/null
    wait "$CONTAINERD_PID" 2>/dev/null
  fi
  while IFS= read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
  done < <(awk -v t="$T" 'index($2, t) == 1 { print $2 }' /proc/self/mounts | sort -r)
  return 0
}

containerd_ctr() {
  ctr --address "$CONTAINERD_SOCK" -n "$CONTAINERD_NS" "$@"
}

containerd_pull() {
  local ref=$1; shift
  local args=() out
  while [ $# -gt 0 ]; do
    case $1 in
      --platform) args+=(--platform "$2"); shift 2 ;;
      *) echo "containerd_pull: unknown option $1" >&2; return 1 ;;
    esac
  done
  out=$(containerd_ctr images pull --plain-http --label io.cri-containerd.image=managed \
        --print-chainid "${args[@]}" "$ref" 2>&1)
  local rc=$?
  printf '%s\n' "$out" >> "$CONTAINERD_DIR/pull.log"
  if [ $rc -ne 0 ]; then
    # The last lines are progress bars; ctr's own error line says why.
    printf 'ctr pull %s failed: %s\n' "$ref" "$(printf '%s\n' "$out" | grep '^ctr: ' | tail -1)" >&2
    return $rc
  fi
  printf '%s\n' "$out" | sed -n 's/^image chain ID: //p' | tail -1
}

containerd_chain() {
  local id=$1 chain=()
  while [ -n "$id" ]; do
    chain=("$id" "${chain[@]}")
    id=$(containerd_ctr snapshots info "$id" | jq -r '.Parent // empty') || return 1
  done
  printf '%s\n' "${chain[@]}"
}

containerd_snapshots() {
  containerd_ctr snapshots ls | awk 'NR > 1 && $NF == "Committed" { print $1 }'
}

# A read-only view of a committed snapshot mounts that snapshot's own fs
# directory: as the bind source when it is a single layer, as the first
# lowerdir otherwise.  Nothing is mounted: ctr only prints the mounts.
containerd_snapshot_dir() {
  local snap=$1 key mounts dir out
  key="sbdisk-view-$$-$RANDOM"
  mounts=$(containerd_ctr snapshots view --mounts "$key" "$snap") || return 1
  # The view holds no lease: containerd's garbage collector may have removed
  # it already, which is as good.
  if ! out=$(containerd_ctr snapshots rm "$key" 2>&1) && [[ $out != *"not found"* ]]; then
    echo "removing view $key: $out" >&2
    return 1
  fi
  dir=$(printf '%s' "$mounts" | jq -r '
    .[0] | if .Type == "bind" then .Source
           else (.Options[] | select(startswith("lowerdir=")) | ltrimstr("lowerdir=") | split(":")[0]) end')
  [ -d "$dir" ] || { echo "snapshot $snap: no directory in mounts $mounts" >&2; return 1; }
  echo "$dir"
}

containerd_images_ls() {
  containerd_ctr images ls
}
