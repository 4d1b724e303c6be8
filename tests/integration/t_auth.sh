# Credentials and TLS against real registries: htpasswd (Basic) behind HTTPS
# with a private CA, a token server that wants credentials, docker's config
# file, a credential helper, --username/--password-stdin, --ca-file and
# --cert-dir, and a docker.io mirror.  Secrets must never show in messages.
. "$(dirname "$0")/lib/common.sh"
. "$TESTS_DIR/lib/registry.sh"

for cmd in docker-registry skopeo openssl python3; do
  command -v "$cmd" >/dev/null || { skip "credentials and TLS" "$cmd is not installed"; exit 0; }
done

demo="$REPO_DIR/examples/demo-image"
user=ci-bot
pass='s3cret pass:with colon'
export SBDISK_NO_GCP_AUTH=1
# No stray credentials from the machine running the tests.
export HOME=$T/home DOCKER_CONFIG=$T/no-docker-config
unset REGISTRY_AUTH_FILE
mkdir -p "$HOME"

# expect NAME CODE REGEX [sbdisk build args...]: fails with CODE, the message
# matches REGEX, never shows the password, and no disk is left.
expect() {
  local name=$1 code=$2 re=$3; shift 3
  local msg rc
  msg=$("$SBDISK" build -q --cache-dir "$T/cache-fail" -o "$T/fail.raw" "$@" 2>&1 </dev/null); rc=$?
  if [ $rc -ne "$code" ]; then fail "$name" "exit $rc, want $code: $msg"
  elif ! grep -Eq -- "$re" <<<"$msg"; then fail "$name" "message: $msg"
  elif grep -qF -- "$pass" <<<"$msg" || grep -qF -- "s3cret" <<<"$msg"; then fail "$name" "the password shows: $msg"
  elif [ -e "$T/fail.raw" ]; then fail "$name" "a disk was left"
  else ok "$name"; fi
}
# build NAME OUT [args...]: succeeds and leaves an fsck-clean disk.
build() {
  local name=$1 out=$2; shift 2
  local msg
  if msg=$("$SBDISK" build -q --cache-dir "$T/cache-$RANDOM" -o "$out" "$@" 2>&1) &&
     e2fsck -fn "$out" >/dev/null 2>&1; then ok "$name"; else fail "$name" "$msg"; fi
}
auth_json() { printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$1" "$(printf '%s:%s' "$2" "$3" | base64 -w0)"; }

# --- htpasswd behind TLS with a private CA --------------------------------------
registry_start_htpasswd_tls "$user" "$pass" || { fail "htpasswd+TLS registry starts" "see above"; exit 1; }
ok "htpasswd+TLS registry starts"
if registry_push "$demo:1.0" team/demo:1.0 --dest-creds "$user:$pass"; then ok "push with credentials"
else fail "push with credentials" "skopeo could not push to $REGISTRY"; exit 1; fi
img=$REGISTRY/team/demo:1.0
ca=$REGISTRY_CA

expect "no credentials: Basic asked for, none configured" 3 \
  "image $img: .*authentication required.*Basic.*none are configured" --ca-file "$ca" "$img"
msg=$(printf '%s\n' "$pass" | "$SBDISK" build -q --cache-dir "$T/c1" -o "$T/u.raw" --ca-file "$ca" \
      --username "$user" --password-stdin "$img" 2>&1) && e2fsck -fn "$T/u.raw" >/dev/null 2>&1 &&
  ok "--username with --password-stdin, verified TLS with --ca-file" ||
  fail "--username with --password-stdin, verified TLS with --ca-file" "$msg"
msg=$(printf 'wrong\n' | "$SBDISK" build -q --cache-dir "$T/c2" -o "$T/fail.raw" --ca-file "$ca" \
      --username "$user" --password-stdin "$img" 2>&1); rc=$?
if [ $rc -eq 3 ] && grep -q "access denied (HTTP 401) with the credentials from --username" <<<"$msg" &&
   ! grep -q wrong <<<"$msg" && [ ! -e "$T/fail.raw" ]; then ok "wrong password: refused, clearly"
else fail "wrong password: refused, clearly" "exit $rc: $msg"; fi
expect "--username without --password-stdin is refused" 2 "--username needs --password-stdin" \
  --username "$user" "$img"

auth_json "$REGISTRY" "$user" "$pass" > "$T/auth.json"
build "--auth-file (base64 auth), loopback TLS unverified" "$T/a.raw" --auth-file "$T/auth.json" "$img"
REGISTRY_AUTH_FILE=$T/auth.json build "\$REGISTRY_AUTH_FILE" "$T/b.raw" --ca-file "$ca" "$img"
mkdir -p "$T/dockercfg" && cp "$T/auth.json" "$T/dockercfg/config.json"
DOCKER_CONFIG=$T/dockercfg build "\$DOCKER_CONFIG/config.json" "$T/c.raw" --ca-file "$ca" "$img"
mkdir -p "$HOME/.docker" && cp "$T/auth.json" "$HOME/.docker/config.json"
(unset DOCKER_CONFIG; build "~/.docker/config.json" "$T/d.raw" --ca-file "$ca" "$img")
rm -rf "$HOME/.docker"

# a CA that did not sign the registry's certificate: TLS refused, with a hint
mkdir -p "$T/otherca" && tls_make_ca "$T/otherca"
expect "--ca-file with the wrong CA: certificate refused" 3 \
  "cannot connect to registry $REGISTRY: .*certif" --auth-file "$T/auth.json" --ca-file "$T/otherca/ca.crt" "$img"
expect "--ca-file that holds no certificate" 2 "--ca-file .* holds no PEM certificate" \
  --ca-file "$T/auth.json" "$img"
mkdir -p "$T/certs.d/$REGISTRY" && cp "$ca" "$T/certs.d/$REGISTRY/ca.crt"
build "--cert-dir DIR/HOST:PORT/ca.crt" "$T/e.raw" --auth-file "$T/auth.json" --cert-dir "$T/certs.d" "$img"
mkdir -p "$T/certs-wrong.d/$REGISTRY" && cp "$T/otherca/ca.crt" "$T/certs-wrong.d/$REGISTRY/ca.crt"
expect "--cert-dir with the wrong CA: certificate refused" 3 "cannot connect to registry $REGISTRY" \
  --auth-file "$T/auth.json" --cert-dir "$T/certs-wrong.d" "$img"

# a credential helper, exactly as docker runs one: `get`, the host on stdin
mkdir -p "$T/bin"
cat > "$T/bin/docker-credential-sbdtest" <<SH
#!/bin/sh
[ "\$1" = get ] || exit 1
cat > "$T/helper.stdin"
echo "\$*" > "$T/helper.argv"
printf '{"ServerURL":"%s","Username":"%s","Secret":"%s"}\n' "$REGISTRY" "$user" "$pass"
SH
chmod +x "$T/bin/docker-credential-sbdtest"
printf '{"credHelpers":{"%s":"sbdtest"}}\n' "$REGISTRY" > "$T/helper.json"
PATH=$T/bin:$PATH build "credential helper (credHelpers)" "$T/f.raw" --auth-file "$T/helper.json" --ca-file "$ca" "$img"
if [ "$(cat "$T/helper.stdin" 2>/dev/null)" = "$REGISTRY" ] && [ "$(cat "$T/helper.argv")" = get ]; then
  ok "the helper got 'get' and the registry host on stdin"
else fail "the helper got 'get' and the registry host on stdin" "argv=$(cat "$T/helper.argv" 2>&1) stdin=$(cat "$T/helper.stdin" 2>&1)"; fi
printf '{"credsStore":"sbdtest"}\n' > "$T/store.json"
PATH=$T/bin:$PATH build "credential helper (credsStore)" "$T/g.raw" --auth-file "$T/store.json" --ca-file "$ca" "$img"
printf '{"credHelpers":{"%s":"missing"}}\n' "$REGISTRY" > "$T/missing.json"
expect "a helper that is not installed: named" 3 "docker-credential-missing not found on PATH" \
  --auth-file "$T/missing.json" --ca-file "$ca" "$img"

# --- a token server that wants credentials --------------------------------------
registry_start_token --basic "$user:$pass" || { fail "token registry starts" "see above"; exit 1; }
if registry_push "$demo:1.0" team/demo:1.0 --dest-creds "$user:$pass"; then ok "push to the token registry"
else fail "push to the token registry" "skopeo could not push"; exit 1; fi
img=$REGISTRY/team/demo:1.0
expect "token server: no credentials, anonymous token refused" 3 \
  "image $img: .*the token server .* refused an anonymous token" "$img"
auth_json "$REGISTRY" "$user" "$pass" > "$T/token-auth.json"
: > "$TOKEN_LOG"
build "token server: Basic credentials from the config file" "$T/h.raw" --auth-file "$T/token-auth.json" "$img"
if grep -q "GET /token?.*authorization=yes" "$TOKEN_LOG"; then ok "the token request carried the credentials"
else fail "the token request carried the credentials" "$(cat "$TOKEN_LOG")"; fi
auth_json "$REGISTRY" "$user" "not-it" > "$T/token-wrong.json"
expect "token server: wrong password, refused with the source named" 3 \
  "refused the credentials from $T/token-wrong.json" --auth-file "$T/token-wrong.json" "$img"

# --- a docker.io mirror ------------------------------------------------------------
registry_start || { fail "mirror registry starts" "see above"; exit 1; }
mirror=$REGISTRY
registry_push "$demo:1.0" library/demo:1.0 || { fail "push to the mirror"; exit 1; }
registry_start || { fail "empty mirror starts" "see above"; exit 1; }
empty=$REGISTRY
build "docker.io through --registry-mirror" "$T/m.raw" --registry-mirror "$mirror" demo:1.0
if debugfs -R 'cat /images.metadata' "$T/m.raw" 2>/dev/null | grep -q "^docker.io/library/demo:1.0 "; then
  ok "the mirror's image is named as docker.io's"; else fail "the mirror's image is named as docker.io's" "$(debugfs -R 'cat /images.metadata' "$T/m.raw" 2>&1)"; fi
build "a mirror without the image is passed over" "$T/n.raw" --registry-mirror "http://$empty" \
  --registry-mirror "$mirror" docker.io/library/demo:1.0
