# A private docker-registry (the CNCF distribution registry, Debian's package)
# on a loopback port, and pushing OCI layouts into it with skopeo.
#   . lib/common.sh; . lib/registry.sh
#   registry_start            -> sets REGISTRY=127.0.0.1:PORT
#   registry_push LAYOUT[:TAG] REPO:TAG [skopeo copy options...]
#   registry_start_token [--redirect] [tokenserver options...]
#                             -> a registry behind Bearer-token auth (see below)
#   registry_start_basic      -> a registry that demands Basic credentials
#   registry_start_tls        -> a registry on HTTPS with a self-signed certificate

# _registry_config DIR PORT: the config every test registry shares.
_registry_config() {
  local dir=$1 port=$2
  cat > "$dir/config.yml" <<YML
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
YML
}

# _registry_serve DIR PORT: starts docker-registry on DIR/config.yml, waits for
# it, and exports REGISTRY and REGISTRY_DIR.
_registry_serve() {
  local dir=$1 port=$2
  docker-registry serve "$dir/config.yml" > "$dir/log" 2>&1 &
  bg_register $!
  REGISTRY_DIR=$dir
  if ! wait_for_port "$port" 30; then
    echo "docker-registry did not start:" >&2; cat "$dir/log" >&2
    return 1
  fi
  REGISTRY=127.0.0.1:$port
  export REGISTRY REGISTRY_DIR
}

# registry_start [--foreign-urls]: with --foreign-urls the registry accepts
# manifests whose non-distributable layers it does not hold, given http(s)
# URLs (as registries that serve Windows base images do); distribution's
# default refuses them.
registry_start() {
  command -v docker-registry >/dev/null || { echo "docker-registry not installed" >&2; return 1; }
  local port dir
  port=$(free_port) || return 1
  dir=$(mktemp -d "$T/registry.XXXXXX")
  _registry_config "$dir" "$port"
  if [ "${1:-}" = --foreign-urls ]; then
    printf '%s\n' 'validation:' '  manifests:' '    urls:' '      allow:' "        - '^https?://'" >> "$dir/config.yml"
  fi
  _registry_serve "$dir" "$port"
}

# registry_push LAYOUT[:TAG] REPO:TAG [extra skopeo copy options]
# Copies every manifest of the layout (--all), blobs unchanged.
registry_push() {
  local src=$1 dst=$2; shift 2
  skopeo --insecure-policy copy -q --all --dest-tls-verify=false "$@" \
    "oci:$src" "docker://$REGISTRY/$dst" >/dev/null
}

# registry_start_token [--redirect] [tokenserver options (--deny REPO, --no-access REPO)...]
# A registry with `auth: token:`, its realm served by $TOOLS/tokenserver, which
# signs RS256 JWTs with a throw-away key and self-signed certificate (the
# registry's rootcertbundle) and grants every scope anonymously unless told
# otherwise.  Exports REGISTRY, REGISTRY_DIR and TOKEN_LOG (one line per token
# request, see tokenserver.c).  With --redirect, blob GETs are redirected (the
# registry's `redirect` storage middleware) to a second tokenserver on another
# port serving the registry's storage; FILES_LOG records what reached it.
registry_start_token() {
  command -v docker-registry >/dev/null || { echo "docker-registry not installed" >&2; return 1; }
  command -v openssl >/dev/null || { echo "openssl not installed" >&2; return 1; }
  local redirect=0
  [ "${1:-}" = --redirect ] && { redirect=1; shift; }
  local port tport fport dir
  dir=$(mktemp -d "$T/registry.XXXXXX")
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=sbdisk test token issuer" \
    -keyout "$dir/token.key" -out "$dir/token.crt" >/dev/null 2>&1 ||
    { echo "openssl could not make the token signing key" >&2; return 1; }
  # Each port is picked once the previous server listens, so none collide.
  tport=$(free_port) || return 1
  TOKEN_LOG=$dir/token.log
  "$TOOLS/tokenserver" --port "$tport" --key "$dir/token.key" --cert "$dir/token.crt" \
    --issuer sbdisk-test-issuer --service sbdisk-test-registry --log "$TOKEN_LOG" "$@" \
    > "$dir/tokenserver.log" 2>&1 &
  bg_register $!
  wait_for_port "$tport" 10 || { echo "tokenserver did not start:" >&2; cat "$dir/tokenserver.log" >&2; return 1; }
  if [ $redirect = 1 ]; then
    fport=$(free_port) || return 1
    mkdir -p "$dir/data"
    FILES_LOG=$dir/files.log
    "$TOOLS/tokenserver" --port "$fport" --files "$dir/data" --log "$FILES_LOG" \
      > "$dir/fileserver.log" 2>&1 &
    bg_register $!
    wait_for_port "$fport" 10 || { echo "file server did not start:" >&2; cat "$dir/fileserver.log" >&2; return 1; }
    export FILES_LOG
  fi
  port=$(free_port) || return 1
  _registry_config "$dir" "$port"
  cat >> "$dir/config.yml" <<YML
auth:
  token:
    realm: http://127.0.0.1:$tport/token
    service: sbdisk-test-registry
    issuer: sbdisk-test-issuer
    rootcertbundle: $dir/token.crt
YML
  [ $redirect = 1 ] && cat >> "$dir/config.yml" <<YML
middleware:
  storage:
    - name: redirect
      options:
        baseurl: http://127.0.0.1:$fport
YML
  export TOKEN_LOG
  _registry_serve "$dir" "$port"
}

# registry_start_basic: a registry behind `auth: htpasswd:` with no users, so
# every request is answered 401 with a Basic challenge.  Exports REGISTRY.
registry_start_basic() {
  command -v docker-registry >/dev/null || { echo "docker-registry not installed" >&2; return 1; }
  local port dir
  port=$(free_port) || return 1
  dir=$(mktemp -d "$T/registry.XXXXXX")
  : > "$dir/htpasswd"
  _registry_config "$dir" "$port"
  cat >> "$dir/config.yml" <<YML
auth:
  htpasswd:
    realm: sbdisk-test
    path: $dir/htpasswd
YML
  _registry_serve "$dir" "$port"
}

# registry_start_tls: a registry that speaks only HTTPS, with a self-signed
# certificate nobody trusts.  Exports REGISTRY.
registry_start_tls() {
  command -v docker-registry >/dev/null || { echo "docker-registry not installed" >&2; return 1; }
  local port dir
  port=$(free_port) || return 1
  dir=$(mktemp -d "$T/registry.XXXXXX")
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=127.0.0.1" \
    -keyout "$dir/tls.key" -out "$dir/tls.crt" >/dev/null 2>&1 ||
    { echo "openssl could not make the TLS certificate" >&2; return 1; }
  _registry_config "$dir" "$port"
  # Continues the http: section _registry_config ends with.
  cat >> "$dir/config.yml" <<YML
  tls:
    certificate: $dir/tls.crt
    key: $dir/tls.key
YML
  _registry_serve "$dir" "$port"
}

# tls_make_ca DIR: a throw-away CA (DIR/ca.crt) and a certificate for
# 127.0.0.1 and localhost it signed (DIR/tls.crt, DIR/tls.key).
tls_make_ca() {
  local dir=$1
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=sbdisk test CA" \
    -keyout "$dir/ca.key" -out "$dir/ca.crt" >/dev/null 2>&1 &&
  openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$dir/tls.key" -out "$dir/tls.csr" >/dev/null 2>&1 &&
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n' > "$dir/ext.cnf" &&
  openssl x509 -req -in "$dir/tls.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 2 -extfile "$dir/ext.cnf" -out "$dir/tls.crt" >/dev/null 2>&1
}

# registry_start_htpasswd_tls USER PASSWORD: a registry on HTTPS only, its
# certificate from a throw-away CA (exported as REGISTRY_CA), that lets in
# USER with PASSWORD (htpasswd, bcrypt) and nobody else.  Exports REGISTRY.
registry_start_htpasswd_tls() {
  command -v docker-registry >/dev/null || { echo "docker-registry not installed" >&2; return 1; }
  local user=$1 pass=$2 port dir hash
  dir=$(mktemp -d "$T/registry.XXXXXX")
  tls_make_ca "$dir" || { echo "openssl could not make the test CA" >&2; return 1; }
  hash=$(python3 -W ignore -c 'import crypt, sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH)))' "$pass") ||
    { echo "python3 could not make a bcrypt hash" >&2; return 1; }
  printf '%s:%s\n' "$user" "$hash" > "$dir/htpasswd"
  port=$(free_port) || return 1
  _registry_config "$dir" "$port"
  # tls: continues the http: section _registry_config ends with
  cat >> "$dir/config.yml" <<YML
  tls:
    certificate: $dir/tls.crt
    key: $dir/tls.key
auth:
  htpasswd:
    realm: sbdisk-test
    path: $dir/htpasswd
YML
  REGISTRY_CA=$dir/ca.crt
  export REGISTRY_CA
  _registry_serve "$dir" "$port"
}
