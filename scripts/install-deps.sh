#!/bin/sh
# Installs the Debian 12 packages sbdisk needs to build, test and demo, if any
# is missing.  Safe to run again: it does nothing when all are present.
set -eu

PACKAGES="build-essential pkg-config
libcurl4-openssl-dev libjansson-dev libarchive-dev libblkid-dev libext2fs-dev
libssl-dev libzstd-dev zlib1g-dev libisal-dev check
e2fsprogs attr docker-registry skopeo umoci containerd zstd pigz jq openssl curl
time python3 python3-yaml"
# t_examples runs HashiCorp's HCL parser under node; a node installed some
# other way, with its npm, does as well as Debian's.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  PACKAGES="$PACKAGES nodejs npm"
fi

missing=""
for p in $PACKAGES; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done

if [ -n "$missing" ]; then
  echo "install-deps: installing:$missing" >&2
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: not root; run as root or install these packages:$missing" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  # shellcheck disable=SC2086
  apt-get install -y -q --no-install-recommends $missing >/dev/null
  # Debian starts some daemons on install where an init system runs; sbdisk's
  # tests start their own private instances and need the default ones idle.
  for svc in docker-registry containerd; do
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active -q "$svc" 2>/dev/null; then
      systemctl stop "$svc" || true
    fi
  done
fi

# t_examples parses examples/terraform with HashiCorp's own HCL parser, built
# to WASM and published on npm as @cdktf/hcl2json.  The version is pinned, and
# it goes into build-tools/ (which git ignores) without a lock file, so the
# repository records no registry's address.
HCL2JSON_VERSION=0.21.0
tools="$(cd "$(dirname "$0")/.." && pwd)/build-tools/hcl2json"
have=$(node -p "require('$tools/node_modules/@cdktf/hcl2json/package.json').version" 2>/dev/null || true)
if [ "$have" != "$HCL2JSON_VERSION" ]; then
  echo "install-deps: installing @cdktf/hcl2json@$HCL2JSON_VERSION into $tools" >&2
  mkdir -p "$tools"
  npm install --prefix "$tools" --no-save --no-package-lock --no-audit --no-fund \
    --ignore-scripts --loglevel=error "@cdktf/hcl2json@$HCL2JSON_VERSION" >/dev/null ||
    echo "install-deps: could not install @cdktf/hcl2json; t_examples will skip the HCL parse" >&2
fi
