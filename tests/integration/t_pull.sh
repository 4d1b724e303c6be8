# sbdisk build against real registries: anonymous Bearer-token auth, image
# lists, Docker schema 2, the cache, and registry failures.
. "$(dirname "$0")/lib/common.sh"
. "$TESTS_DIR/lib/registry.sh"

demo="$REPO_DIR/examples/demo-image"
cache="$T/cache"

registry_start_token --redirect || { fail "token registry starts" "see above"; exit 1; }
ok "token registry starts"
if registry_push "$demo:1.0" sbdisk/demo:1.0 && registry_push "$demo:1.0" sbdisk/demo:v2s2 --format v2s2; then
  ok "push the demo image (OCI and Docker schema 2)"
else
  fail "push the demo image (OCI and Docker schema 2)"; exit 1
fi

cat > "$T/images.txt" <<LIST
# the demo image twice, as OCI and as Docker schema 2
$REGISTRY/sbdisk/demo:1.0   # trailing comments are fine

$REGISTRY/sbdisk/demo:v2s2
LIST
if out=$("$SBDISK" build --cache-dir "$cache" -o "$T/disk.raw" -f "$T/images.txt" "$REGISTRY/sbdisk/demo:1.0" 2>&1); then
  ok "build through the token flow, from an image list"
else
  fail "build through the token flow, from an image list" "$out"
fi
if [ -s "$TOKEN_LOG" ]; then ok "a token was requested"; else fail "a token was requested" "empty $TOKEN_LOG"; fi
if [ -s "$FILES_LOG" ]; then ok "blobs came through the storage redirect"; else fail "blobs came through the storage redirect" "nothing reached the redirect host"; fi

dbg() { debugfs -R "$1" "$T/disk.raw" 2>/dev/null; }
rows=$(dbg "cat /images.metadata" | tail -n +2 | awk '{print $1, $2}')
want=$(printf '%s %s\n%s %s' "$REGISTRY/sbdisk/demo:1.0" application/vnd.oci.image.manifest.v1+json \
                             "$REGISTRY/sbdisk/demo:v2s2" application/vnd.docker.distribution.manifest.v2+json)
if [ "$rows" = "$want" ]; then ok "one row per distinct image, in name order"; else fail "one row per distinct image, in name order" "$rows"; fi
if [ "$(dbg "cat /snapshots.metadata" | wc -l)" = 2 ]; then ok "shared layers written once"; else fail "shared layers written once" "$(dbg 'cat /snapshots.metadata')"; fi
check "e2fsck -fn clean" e2fsck -fn "$T/disk.raw"

# the same disk again from the cache: every layer reported cached, same content
out=$("$SBDISK" build --cache-dir "$cache" -o "$T/disk2.raw" -f "$T/images.txt" 2>&1)
if [ "$(grep -c ' cached, ' <<<"$out")" = 2 ]; then ok "second build reads layers from the cache"; else fail "second build reads layers from the cache" "$out"; fi
if [ "$(debugfs -R 'cat /snapshots.metadata' "$T/disk2.raw" 2>/dev/null)" = "$(dbg 'cat /snapshots.metadata')" ]; then
  ok "cached build has the same snapshots"; else fail "cached build has the same snapshots"; fi

# a corrupt cache entry is detected and fetched again
blob=$(ls "$cache/blobs/sha256" | head -1)
printf 'garbage' > "$cache/blobs/sha256/$blob"
if out=$("$SBDISK" build -q --cache-dir "$cache" -o "$T/disk3.raw" -f "$T/images.txt" 2>&1) && e2fsck -fn "$T/disk3.raw" >/dev/null 2>&1; then
  ok "corrupt cache entry is fetched again"; else fail "corrupt cache entry is fetched again" "$out"; fi

# what a crash can leave, since entries are not synced: the right size, zeros
# for bytes (the file's size reached the device, its data did not)
blob=$(ls -S "$cache/blobs/sha256" | head -1)
size=$(stat -c %s "$cache/blobs/sha256/$blob")
truncate -s 0 "$cache/blobs/sha256/$blob" && truncate -s "$size" "$cache/blobs/sha256/$blob"
if out=$("$SBDISK" build --cache-dir "$cache" -o "$T/disk4.raw" -f "$T/images.txt" 2>&1) &&
   [ "$(grep -c ' cached, ' <<<"$out")" = 1 ] &&
   [ "$(debugfs -R 'cat /snapshots.metadata' "$T/disk4.raw" 2>/dev/null)" = "$(dbg 'cat /snapshots.metadata')" ] &&
   [ "$(sha256sum <"$cache/blobs/sha256/$blob" | cut -d' ' -f1)" = "$blob" ]; then
  ok "a torn cache entry of the right size is fetched again"
else fail "a torn cache entry of the right size is fetched again" "$out"; fi

# failures: one message naming the image, the registry's exit class
expect() { # NAME CODE REGEX ARGS...
  local name=$1 code=$2 re=$3; shift 3
  local msg rc
  msg=$("$SBDISK" build -q --cache-dir "$cache" -o "$T/fail.raw" "$@" 2>&1); rc=$?
  if [ $rc -eq "$code" ] && grep -Eq -- "$re" <<<"$msg" && [ ! -e "$T/fail.raw" ]; then ok "$name"
  else fail "$name" "exit $rc: $msg"; fi
}
expect "missing tag" 3 "image $REGISTRY/sbdisk/demo:nope: .*not found" "$REGISTRY/sbdisk/demo:nope"
expect "missing repository" 3 "image $REGISTRY/sbdisk/none:1: .*not found" "$REGISTRY/sbdisk/none:1"
port=$(free_port)
expect "dead registry" 3 "image 127.0.0.1:$port/x:1: .*cannot connect" "127.0.0.1:$port/x:1"
