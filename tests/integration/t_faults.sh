# Registries that misbehave, through tests/tools/faultproxy.c in front of a
# real docker-registry: downloads cut mid-blob (resumed with Range), 503s,
# 429 with Retry-After, a trickle.  Each build must give a disk identical to
# the fault-free one; faults that never stop must fail in bounded time with a
# clear message.  Also: two builds sharing one cache at once, and a warm cache
# that makes no blob requests at all.
. "$(dirname "$0")/lib/common.sh"
. "$TESTS_DIR/lib/registry.sh"
. "$TESTS_DIR/lib/layout.sh"

for cmd in docker-registry skopeo jq; do
  command -v "$cmd" >/dev/null || { skip "faults" "$cmd is not installed"; exit 0; }
done

# An image whose second layer is a 3 MiB blob (incompressible), worth cutting.
layout=$T/layout
layout_init "$layout"
mkdir -p "$T/r1/etc" "$T/r2/data"
echo "small layer" > "$T/r1/etc/motd"
head -c $((3 << 20)) /dev/urandom > "$T/r2/data/weights.bin"
tar -C "$T/r1" -cf "$T/l1.tar" . && tar -C "$T/r2" -cf "$T/l2.tar" . || { fail "make layers" "tar failed"; exit 1; }
layout_image "$layout" v1 "$T/l1.tar:gzip" "$T/l2.tar:gzip" >/dev/null || { fail "make layout"; exit 1; }
registry_start || { fail "registry starts" "see above"; exit 1; }
upstream=$REGISTRY
layout_push_raw "$layout" v1 faults/img:v1 || { fail "push" "layout_push_raw failed"; exit 1; }
big=$(stat -c %s "$(ls -S "$layout"/blobs/sha256/* | head -1)")

# proxy_start [faultproxy options...]: a fresh proxy in front of the registry,
# always on the same port (the image's name, which the disk records, stays the
# same); sets PROXY (host:port) and PLOG (its request log).
PROXY_PORT=$(free_port) || { fail "free port"; exit 1; }
proxy_start() {
  [ -n "${PROXY_PID:-}" ] && kill "$PROXY_PID" 2>/dev/null && wait "$PROXY_PID" 2>/dev/null
  local port=$PROXY_PORT
  PLOG=$(mktemp "$T/proxy.XXXXXX.log")
  "$TOOLS/faultproxy" --port "$port" --upstream "$upstream" --log "$PLOG" "$@" 2>>"$T/proxy.err" &
  PROXY_PID=$!
  bg_register $PROXY_PID
  wait_for_port "$port" 10 || { echo "faultproxy did not start: $(cat "$T/proxy.err")" >&2; return 1; }
  PROXY=127.0.0.1:$port
}
export SOURCE_DATE_EPOCH=1700000000
# run NAME OUT: a build through the proxy, from an empty cache.
run() {
  rm -rf "$T/cache"
  "$SBDISK" build -q --cache-dir "$T/cache" -o "$2" "$PROXY/faults/img:v1" > "$T/out" 2>&1
}
# same NAME DISK: the disk is byte for byte the fault-free one.
same() {
  if [ "$(sparse_digest "$2")" = "$REF_DIGEST" ]; then ok "$1"; else fail "$1" "differs from the fault-free disk"; fi
}

proxy_start || { fail "proxy starts"; exit 1; }
if run ref "$T/ref.raw" && e2fsck -fn "$T/ref.raw" >/dev/null 2>&1; then ok "fault-free build through the proxy"
else fail "fault-free build through the proxy" "$(cat "$T/out")"; exit 1; fi
REF_DIGEST=$(sparse_digest "$T/ref.raw")
run ref2 "$T/ref2.raw"
same "two fault-free builds are identical (what the comparisons below rely on)" "$T/ref2.raw"

cut=$((big / 3))
proxy_start --cut-blob "$cut" --faults 2
if run cut "$T/cut.raw"; then same "downloads cut twice mid-blob: resumed, identical disk" "$T/cut.raw"
else fail "downloads cut twice mid-blob" "$(cat "$T/out")"; fi
if grep -q "range=bytes=$cut- " "$PLOG" && grep -q "range=bytes=$((2 * cut))- " "$PLOG"; then
  ok "each resume asked only for the rest (Range: bytes=N-)"
else fail "each resume asked only for the rest" "$(cat "$PLOG")"; fi

proxy_start --status 503 --faults 3
if run s503 "$T/503.raw"; then same "three 503s: retried, identical disk" "$T/503.raw"
else fail "three 503s" "$(cat "$T/out")"; fi
[ "$(grep -c 'status=503' "$PLOG")" = 3 ] && ok "each 503 was one request" || fail "each 503 was one request" "$(cat "$PLOG")"

proxy_start --status 429 --retry-after 2 --faults 1 --only manifests
t0=$(date +%s.%N)
if run s429 "$T/429.raw"; then same "429 with Retry-After: retried, identical disk" "$T/429.raw"
else fail "429 with Retry-After" "$(cat "$T/out")"; fi
t1=$(date +%s.%N)
if awk -v a="$t0" -v b="$t1" 'BEGIN { exit !(b - a >= 2) }'; then ok "Retry-After: 2 was honoured"
else fail "Retry-After: 2 was honoured" "the build took $(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }') s"; fi

proxy_start --trickle 2000000 --only blobs --faults always
if run trickle "$T/trickle.raw"; then same "a trickle (2 MB/s): identical disk" "$T/trickle.raw"
else fail "a trickle" "$(cat "$T/out")"; fi

# faults that never stop: a bounded failure naming the registry, image and blob
proxy_start --status 503 --faults always --only blobs
t0=$(date +%s)
run forever "$T/never.raw"; rc=$?
t1=$(date +%s)
msg=$(cat "$T/out")
if [ $rc -eq 3 ] && grep -Eq "^sbdisk: error: image $PROXY/faults/img:v1: registry $PROXY: .*blob sha256:[0-9a-f]{64}: HTTP 503.*gave up after 5 tries" <<<"$msg" &&
   [ ! -e "$T/never.raw" ]; then ok "503 forever: fails with one clear message, no disk"
else fail "503 forever: fails with one clear message, no disk" "exit $rc: $msg"; fi
if [ $((t1 - t0)) -lt 60 ]; then ok "503 forever: gave up within a minute ($((t1 - t0)) s)"
else fail "503 forever: gave up within a minute" "$((t1 - t0)) s"; fi
if ! ls -A "$T/cache/blobs/sha256" 2>/dev/null | grep -q '^\.'; then
  ok "503 forever: no partial file left in the cache"; else fail "503 forever: no partial file left in the cache" "$(ls -A "$T/cache/blobs/sha256")"; fi

proxy_start --cut-blob 1000 --faults always
run cutforever "$T/never.raw"; rc=$?
msg=$(cat "$T/out")
if [ $rc -eq 3 ] && grep -q "gave up after 20 tries" <<<"$msg" && [ ! -e "$T/never.raw" ]; then
  ok "cut forever: gives up after a bounded number of resumes"
else fail "cut forever: gives up after a bounded number of resumes" "exit $rc: $msg"; fi

# a warm cache: no blob request at all
proxy_start
rm -rf "$T/cache"
"$SBDISK" build -q --cache-dir "$T/cache" -o "$T/w1.raw" "$PROXY/faults/img:v1" > "$T/out" 2>&1 || fail "cold build" "$(cat "$T/out")"
: > "$PLOG"
if "$SBDISK" build -q --cache-dir "$T/cache" -o "$T/w2.raw" "$PROXY/faults/img:v1" > "$T/out" 2>&1 &&
   ! grep -q "/blobs/" "$PLOG"; then ok "warm cache: no blob requests"
else fail "warm cache: no blob requests" "$(cat "$T/out") $(cat "$PLOG")"; fi

# two builds sharing one cache at the same time (a slow download, so they overlap)
proxy_start --trickle 4000000 --only blobs --faults always
rm -rf "$T/shared"
"$SBDISK" build -q --cache-dir "$T/shared" -o "$T/p1.raw" "$PROXY/faults/img:v1" > "$T/p1.out" 2>&1 & p1=$!
"$SBDISK" build -q --cache-dir "$T/shared" -o "$T/p2.raw" "$PROXY/faults/img:v1" > "$T/p2.out" 2>&1 & p2=$!
wait $p1; r1=$?; wait $p2; r2=$?
if [ $r1 -eq 0 ] && [ $r2 -eq 0 ] && [ "$(sparse_digest "$T/p1.raw")" = "$REF_DIGEST" ] &&
   [ "$(sparse_digest "$T/p2.raw")" = "$REF_DIGEST" ]; then
  ok "two builds at once on one cache: both succeed, both identical"
else fail "two builds at once on one cache" "exit $r1/$r2: $(cat "$T/p1.out" "$T/p2.out")"; fi
layers=$(jq -r '.layers[].digest' "$layout/blobs/sha256/$(jq -r '.manifests[0].digest' "$layout/index.json" | cut -d: -f2)" | cut -d: -f2)
missing=0
for l in $layers; do [ -f "$T/shared/blobs/sha256/$l" ] || missing=1; done
if [ $missing = 0 ] && ! ls -A "$T/shared/blobs/sha256" | grep -q '^\.'; then ok "the shared cache holds every layer, no leftovers"
else fail "the shared cache holds every layer, no leftovers" "$(ls -A "$T/shared/blobs/sha256")"; fi

# proxies come from the environment (no_proxy cleared, so that 127.0.0.1 goes
# through one; faultproxy forwards a proxy's absolute-form requests as well)
proxy_start
: > "$PLOG"
if env no_proxy= NO_PROXY= http_proxy="http://$PROXY" "$SBDISK" build -q --cache-dir "$T/cache-proxy" \
     -o "$T/px.raw" "$upstream/faults/img:v1" > "$T/out" 2>&1 &&
   grep -q "^GET http://$upstream/v2/faults/img/blobs/" "$PLOG"; then ok "http_proxy from the environment carries the requests"
else fail "http_proxy from the environment carries the requests" "$(cat "$T/out") $(cat "$PLOG")"; fi
