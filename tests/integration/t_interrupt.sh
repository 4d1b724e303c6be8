# SIGINT / SIGTERM during a build: it stops within a second with 130 / 143,
# removes its temporary files (disk, archive, cache downloads), leaves the
# previous output as it was, and never leaves a half-written cache entry.
. "$(dirname "$0")/lib/common.sh"
. "$TESTS_DIR/lib/registry.sh"
. "$TESTS_DIR/lib/layout.sh"

for cmd in docker-registry jq; do
  command -v "$cmd" >/dev/null || { skip "interrupt" "$cmd is not installed"; exit 0; }
done

# The watcher ends the process with _exit while other threads run, by design:
# ThreadSanitizer would call that a thread leak.  And a sanitizer's own exit
# work takes about a second, so the bound is looser under one.
export TSAN_OPTIONS="${TSAN_OPTIONS:+$TSAN_OPTIONS:}report_thread_leaks=0"
limit_ms=1000
[ -n "${SBD_SANITIZE:-}" ] && limit_ms=3000

# An image with a 24 MiB incompressible layer: at 2 MB/s through the proxy its
# download takes ~12 s, time enough to be interrupted at a known stage.
mkdir -p "$T/r1/etc" "$T/r2/data"
echo "small layer" > "$T/r1/etc/motd"
head -c $((24 << 20)) /dev/urandom > "$T/r2/data/weights.bin"
tar -C "$T/r1" -cf "$T/l1.tar" . && tar -C "$T/r2" -cf "$T/l2.tar" . || { fail "make layers"; exit 1; }
layout_init "$T/layout" && layout_image "$T/layout" v1 "$T/l1.tar:gzip" "$T/l2.tar:gzip" >/dev/null || { fail "make layout"; exit 1; }
registry_start || { fail "registry starts" "see above"; exit 1; }
layout_push_raw "$T/layout" v1 intr/img:v1 || { fail "push"; exit 1; }
# The proxy must be ours and alive once its port answers: a port taken between
# free_port and bind would leave the test talking to someone else, unthrottled.
for try in 1 2 3 4 5; do
  port=$(free_port) || { fail "free port"; exit 1; }
  # Every blob, not only the first (the config): the downloads must last
  # long enough to be interrupted however fast sbdisk gets.
  "$TOOLS/faultproxy" --port "$port" --upstream "$REGISTRY" --trickle 2000000 --only blobs \
    --faults always 2>"$T/proxy.err" &
  proxy=$!
  bg_register $proxy
  wait_for_port "$port" 10 && kill -0 $proxy 2>/dev/null && break
  kill $proxy 2>/dev/null; proxy=""
done
[ -n "$proxy" ] || { fail "faultproxy starts" "$(cat "$T/proxy.err")"; exit 1; }
slow="127.0.0.1:$port/intr/img:v1"
ok "a registry behind a 2 MB/s proxy"

# What was there before: a disk and an archive from another image.
mkdir -p "$T/out"
if "$SBDISK" build -q --cache-dir "$T/warm" -o "$T/out/disk.raw" --gce-tar "$T/out/disk.tar.gz" \
     "oci:$REPO_DIR/examples/demo-image" 2>"$T/err"; then ok "a previous disk and archive"
else fail "a previous disk and archive" "$(cat "$T/err")"; exit 1; fi
# Each case starts from them again, so that one that fails cannot fail the next.
mkdir -p "$T/prev" && cp --sparse=always "$T/out/disk.raw" "$T/out/disk.tar.gz" "$T/prev/"

# wait_for GLOB SECONDS: until a file matching GLOB exists.
wait_for() {
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    compgen -G "$1" >/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# interrupt NAME SIGNAL WANT-EXIT WAIT-GLOB ARGS...: starts a build, sends
# SIGNAL once WAIT-GLOB exists, and checks what it left.
interrupt() {
  local name=$1 sig=$2 want=$3 glob=$4; shift 4
  cp --sparse=always "$T/prev/disk.raw" "$T/prev/disk.tar.gz" "$T/out/"
  local before_disk before_tar
  before_disk=$(sparse_digest "$T/out/disk.raw")
  before_tar=$(sha256sum < "$T/out/disk.tar.gz")
  # A script's background job starts with SIGINT ignored (and sbdisk keeps
  # an ignored signal ignored, as nohup expects): give it the default back.
  env --default-signal=INT "$SBDISK" build --cache-dir "$T/cache" -o "$T/out/disk.raw" \
    --gce-tar "$T/out/disk.tar.gz" "$@" >/dev/null 2>"$T/intr.err" &
  local pid=$!
  if ! wait_for "$glob" 20; then
    kill -KILL $pid 2>/dev/null; wait $pid 2>/dev/null
    fail "$name" "never saw $glob: $(cat "$T/intr.err")"; return
  fi
  local t0 t1 rc
  t0=$(date +%s%N)
  kill -"$sig" $pid
  wait $pid; rc=$?
  t1=$(date +%s%N)
  local ms=$(( (t1 - t0) / 1000000 ))
  local left
  left=$(find "$T/out" "$T/cache" -name '.*' -type f 2>/dev/null | tr '\n' ' ')
  if [ $rc = "$want" ] && [ "$ms" -lt "$limit_ms" ] && [ -z "$left" ] &&
     grep -q "interrupted by SIG$sig; [1-9][0-9]* temporary files* removed" "$T/intr.err" &&
     [ "$(sparse_digest "$T/out/disk.raw")" = "$before_disk" ] && [ "$(sha256sum < "$T/out/disk.tar.gz")" = "$before_tar" ]; then
    ok "$name: exit $rc in ${ms} ms, temporary files removed, previous disk and archive intact"
  else
    fail "$name" "exit $rc (want $want) in ${ms} ms; left: ${left:-nothing}; $(tr '\n' ' ' < "$T/intr.err" | tail -c 300)"
  fi
  # whatever the cache holds is whole: every entry hashes to its name
  local f bad=""
  for f in "$T/cache"/blobs/sha256/*; do
    [ -e "$f" ] || continue
    [ "$(sha256sum < "$f" | cut -d' ' -f1)" = "$(basename "$f")" ] || bad="$bad $(basename "$f")"
  done
  if [ -z "$bad" ]; then ok "$name: no half-written cache entry"; else fail "$name: cache entries" "corrupt:$bad"; fi
}

# Downloading (and writing the disk as the bytes arrive).
rm -rf "$T/cache"
interrupt "SIGINT while downloading" INT 130 "$T/cache/blobs/sha256/.*.tmp" "$slow"
rm -rf "$T/cache"
interrupt "SIGTERM while downloading" TERM 143 "$T/out/.disk.raw.*.tmp" "$slow"

# Writing the archive: from a warm cache the layers take a moment, then
# --json's full read of the 10 GiB disk takes seconds, with the archive open.
# (The cache is warmed straight from the registry, not at the proxy's pace.)
"$SBDISK" build -q --cache-dir "$T/cache" -o "$T/warmup.raw" "$REGISTRY/intr/img:v1" 2>"$T/err" ||
  { fail "warm the cache" "$(cat "$T/err")"; exit 1; }
rm -f "$T/warmup.raw"
interrupt "SIGINT while writing the GCE archive" INT 130 "$T/out/.disk.tar.gz.*.tmp" --json "$slow"

# A signal ignored when sbdisk starts stays ignored (nohup's promise).
nohup "$SBDISK" build -q --cache-dir "$T/cache" -o "$T/nohup.raw" "$slow" >/dev/null 2>"$T/nohup.err" &
pid=$!
sleep 0.5
kill -HUP $pid 2>/dev/null
if wait $pid; then ok "SIGHUP under nohup is ignored: the build completes"
else fail "SIGHUP under nohup" "exit $?: $(cat "$T/nohup.err")"; fi

# And after all that, a build completes as if nothing had happened.
if "$SBDISK" build -q --cache-dir "$T/cache" -o "$T/out/disk.raw" "$slow" 2>"$T/err" &&
   e2fsck -fn "$T/out/disk.raw" >/dev/null 2>&1; then
  ok "the next build completes (fsck clean)"; else fail "the next build completes" "$(cat "$T/err")"; fi
