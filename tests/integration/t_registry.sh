# The registry client and the blob cache against a real docker-registry: plain
# HTTP on loopback, Bearer tokens from a real token flow (tools/tokenserver.c),
# redirects to another host, Basic challenges, and every way a fetch must fail
# (exact message, exit class, nothing left in the cache).
. "$(dirname "$0")/lib/common.sh"
. "$TESTS_DIR/lib/registry.sh"
. "$TESTS_DIR/lib/layout.sh"

for cmd in docker-registry skopeo openssl jq; do
  command -v "$cmd" >/dev/null || { skip "registry client" "$cmd is not installed"; exit 0; }
done

regfetch() { "$TOOLS/regfetch" "$@"; }
hex() { sha256sum "$1" | cut -d' ' -f1; }

# expect_error NAME RC MESSAGE COMMAND...: COMMAND must fail with exit status
# RC and print exactly "regfetch: MESSAGE" on stderr.
expect_error() {
  local name=$1 want_rc=$2 want=$3; shift 3
  local out rc
  out=$("$@" 2>&1 >/dev/null); rc=$?
  if [ "$rc" -ne "$want_rc" ]; then fail "$name" "exit $rc, want $want_rc: $out"
  elif [ "$out" != "regfetch: $want" ]; then fail "$name" "got: $out | want: regfetch: $want"
  else ok "$name"; fi
}

# cache_is_empty DIR: no entry and no temporary file under DIR/blobs/sha256.
cache_is_empty() { [ -z "$(ls -A "$1/blobs/sha256" 2>/dev/null)" ]; }

# --- two tiny images: one to read, one whose stored bytes we corrupt -----------
layout=$T/layout
layout_init "$layout"
mkdir -p "$T/root1/etc" "$T/root2/etc"
echo "first image" > "$T/root1/etc/motd"
echo "second image, to be corrupted" > "$T/root2/etc/motd"
tar -C "$T/root1" -cf "$T/layer1.tar" . && tar -C "$T/root2" -cf "$T/layer2.tar" . ||
  { fail "build layout" "tar failed"; exit 1; }
m1=$(layout_image "$layout" one "$T/layer1.tar:gzip") &&
  m2=$(layout_image "$layout" two "$T/layer2.tar:gzip") || { fail "build layout" "layout_image failed"; exit 1; }
blob() { echo "$layout/blobs/sha256/${1#sha256:}"; }
l1=$(jq -r '.layers[0].digest' "$(blob "$m1")")
c1=$(jq -r '.config.digest' "$(blob "$m1")")
l2=$(jq -r '.layers[0].digest' "$(blob "$m2")")
absent=sha256:$(printf 'not in any registry' | sha256sum | cut -d' ' -f1)

# --- plain registry ---------------------------------------------------------------
registry_start || { fail "registry start" "docker-registry did not start"; exit 1; }
plain=$REGISTRY plain_dir=$REGISTRY_DIR
registry_push "$layout:one" test/x:v1 && registry_push "$layout:two" test/tampered:v1 ||
  { fail "push" "skopeo could not push to $plain"; exit 1; }

if out=$(regfetch manifest "$plain/test/x:v1") &&
   [ "$(sed -n 1p <<<"$out")" = "Media-Type: $LAYOUT_OCI_MANIFEST" ] &&
   [ "$(sed -n 2p <<<"$out")" = "Digest: $m1" ] &&
   sed -n '4,$p' <<<"$out" | head -c "$(stat -c%s "$(blob "$m1")")" | cmp -s - "$(blob "$m1")"; then
  ok "manifest by tag"; else fail "manifest by tag" "$out"; fi

if out=$(regfetch manifest "$plain/test/x@$m1") && [ "$(sed -n 2p <<<"$out")" = "Digest: $m1" ]; then
  ok "manifest by digest"; else fail "manifest by digest" "$out"; fi

expect_error "missing tag is a 404" 3 \
  "registry $plain: repository test/x: manifest \"nope\" not found (HTTP 404)" \
  regfetch manifest "$plain/test/x:nope"
expect_error "unknown digest is a 404" 3 \
  "registry $plain: repository test/x: manifest \"$absent\" not found (HTTP 404)" \
  regfetch manifest "$plain/test/x@$absent"

# The registry serves stored bytes without re-hashing them: corrupt the
# manifest of test/tampered in its storage and the client must notice.
stored() { echo "$plain_dir/data/docker/registry/v2/blobs/sha256/${1:7:2}/${1#sha256:}/data"; }
printf '\n' >> "$(stored "$m2")"
expect_error "manifest digest mismatch" 4 \
  "registry $plain: repository test/tampered: manifest $m2 does not match its digest: the registry sent content that hashes to sha256:$(hex "$(stored "$m2")")" \
  regfetch manifest "$plain/test/tampered@$m2"

cache=$T/cache
if out=$(regfetch blob "$plain/test/x:v1" "$l1" "$cache") && [ "$out" = "$cache/blobs/sha256/${l1#sha256:}" ] &&
   [ "sha256:$(hex "$out")" = "$l1" ] && cmp -s "$out" "$(blob "$l1")" &&
   [ "$(ls -A "$cache/blobs/sha256")" = "${l1#sha256:}" ]; then
  ok "blob into the cache"; else fail "blob into the cache" "$out"; fi
check "config blob into the cache" regfetch blob "$plain/test/x:v1" "$c1" "$cache"

cache2=$T/cache2
printf 'X' | dd of="$(stored "$l2")" bs=1 seek=20 conv=notrunc status=none
got=sha256:$(hex "$(stored "$l2")")
expect_error "corrupt blob is refused" 4 \
  "blob $l2 does not match its digest: the $(stat -c%s "$(stored "$l2")") bytes received hash to $got" \
  regfetch blob "$plain/test/tampered:v1" "$l2" "$cache2"
if cache_is_empty "$cache2"; then ok "corrupt blob leaves nothing in the cache"
else fail "corrupt blob leaves nothing in the cache" "$(ls -A "$cache2/blobs/sha256")"; fi

expect_error "missing blob is a 404" 3 \
  "registry $plain: repository test/x: blob $absent not found (HTTP 404)" \
  regfetch blob "$plain/test/x:v1" "$absent" "$cache2"
if cache_is_empty "$cache2"; then ok "missing blob leaves nothing in the cache"
else fail "missing blob leaves nothing in the cache" "$(ls -A "$cache2/blobs/sha256")"; fi

dead=$(free_port)
expect_error "dead registry" 3 "cannot connect to registry 127.0.0.1:$dead: Connection refused" \
  regfetch manifest "127.0.0.1:$dead/test/x:v1"

# --- Bearer tokens, and a blob redirect to another host ----------------------------
registry_start_token --redirect --deny test/denied --no-access test/private ||
  { fail "token registry start" "see above"; exit 1; }
tok=$REGISTRY
registry_push "$layout:one" test/x:v1 || { fail "push (token)" "skopeo could not push to $tok"; exit 1; }
: > "$TOKEN_LOG"; : > "$FILES_LOG"

if out=$(regfetch manifest "$tok/test/x:v1" "$tok/test/x@$m1") &&
   [ "$(grep -c "^Digest: $m1$" <<<"$out")" = 2 ]; then
  ok "token: manifest by tag and by digest"; else fail "token: manifest by tag and by digest" "$out"; fi
# One token for both requests: the second used the cached one.
if [ "$(grep -c '^GET /token?.*scope=repository%3[aA]test%2[fF]x%3[aA]pull ' "$TOKEN_LOG")" = 1 ] &&
   [ "$(wc -l < "$TOKEN_LOG")" = 1 ]; then
  ok "token: fetched once and cached"; else fail "token: fetched once and cached" "$(cat "$TOKEN_LOG")"; fi

cache3=$T/cache3
if out=$(regfetch blob "$tok/test/x:v1" "$l1" "$cache3") && [ "sha256:$(hex "$out")" = "$l1" ]; then
  ok "token: blob through a redirect"; else fail "token: blob through a redirect" "$out"; fi
# The redirect really happened, and the registry's token did not follow it.
if grep -q "^GET /docker/registry/v2/blobs/sha256/${l1:7:2}/${l1#sha256:}/data authorization=no$" "$FILES_LOG" &&
   ! grep -q 'authorization=yes' "$FILES_LOG"; then
  ok "token: Authorization not sent to the redirect host"
else fail "token: Authorization not sent to the redirect host" "$(cat "$FILES_LOG")"; fi

expect_error "token: token server refuses" 3 \
  "registry $tok: repository test/denied: access denied: the token server http://127.0.0.1:$(sed -n 's|.*realm: http://127.0.0.1:\([0-9]*\)/token|\1|p' "$REGISTRY_DIR/config.yml")/token refused an anonymous token for \"repository:test/denied:pull\" (HTTP 401)" \
  regfetch manifest "$tok/test/denied:v1"
expect_error "token: token without access" 3 \
  "registry $tok: repository test/private: access denied (HTTP 401): the repository does not exist or needs credentials" \
  regfetch manifest "$tok/test/private:v1"

# --- Basic challenges without credentials: a clear refusal that says where
# credentials go (t_auth.sh tests them being sent) ---------------------------------
registry_start_basic || { fail "basic registry start" "see above"; exit 1; }
expect_error "basic: authentication required" 3 \
  "registry $REGISTRY: repository test/x: authentication required: the registry asks for a user name and password (Basic), and none are configured (see --auth-file, --username)" \
  regfetch manifest "$REGISTRY/test/x:v1"

# --- HTTPS with a self-signed certificate: loopback is insecure, so no
# verification; a TLS-only registry proves HTTPS was used, not the fallback ---
registry_start_tls || { fail "tls registry start" "see above"; exit 1; }
registry_push "$layout:one" test/x:v1 || { fail "push (tls)" "skopeo could not push to $REGISTRY"; exit 1; }
if out=$(regfetch manifest "$REGISTRY/test/x:v1") && [ "$(sed -n 2p <<<"$out")" = "Digest: $m1" ]; then
  ok "tls: loopback registry over unverified HTTPS"; else fail "tls: loopback registry over unverified HTTPS" "$out"; fi
