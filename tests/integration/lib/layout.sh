# OCI image layouts made from layer tars, with nothing but sha256sum, gzip,
# zstd and jq, so tests control every byte a registry will serve.
#   . lib/common.sh; . lib/layout.sh
#
#   layout_init DIR
#   layout_add_blob DIR FILE                 -> prints sha256:HEX (the blob is copied)
#   layout_add_json DIR JSON                 -> same, for a JSON document (written as given)
#   layout_image DIR TAG [--platform OS/ARCH[/VARIANT]] [--media oci|docker] LAYER...
#       LAYER is PATH.tar:gzip|zstd|none.  Writes the layers, a config whose
#       rootfs.diff_ids are the sha256 of each uncompressed tar, and a manifest;
#       tags it TAG in index.json; prints the manifest digest.  Default platform
#       linux/amd64, default media oci.  --media docker writes Docker schema 2
#       media types (manifest, config, layers: gzip and none only; Docker has
#       no zstd type): push such a tag with registry_push ... --format v2s2.
#   layout_image_blobs DIR TAG BLOB DIFFID [BLOB DIFFID]...
#       The same for layers already compressed with gzip (OCI media types,
#       linux/amd64), each with its diffID given: for layers too large to
#       keep uncompressed on disk.
#   layout_index DIR TAG MANIFEST-DIGEST...
#       An image index over those manifests (platforms read from their configs)
#       plus one buildkit-style attestation manifest (platform unknown/unknown,
#       vnd.docker.reference.type=attestation-manifest) for the first one;
#       tagged TAG; prints the index digest.
#   layout_diff_ids DIR MANIFEST-DIGEST      -> the config's diff_ids, one a line
#   layout_chain_ids DIR MANIFEST-DIGEST     -> the chainIDs, one a line, in order
#   chain_ids DIFFID...                      -> chainIDs of a diffID list
#   layout_push_raw DIR TAG REPO:TAG         push to $REGISTRY byte for byte
#
# Why a raw push: skopeo 1.9 (registry_push) gzips every uncompressed layer on
# its way to a registry (new blob digest), refuses zstd layers and attestation
# manifests with --format v2s2, and does not see Docker-media-type manifests
# in an OCI layout at all.  layout_push_raw speaks the distribution API with
# curl and sends the layout's blobs and manifests unchanged.
#
# Compression is deterministic (gzip -n, zstd without a name or time), so the
# same tars give the same digests on every run.

LAYOUT_OCI_INDEX=application/vnd.oci.image.index.v1+json
LAYOUT_OCI_MANIFEST=application/vnd.oci.image.manifest.v1+json
LAYOUT_OCI_CONFIG=application/vnd.oci.image.config.v1+json
LAYOUT_DOCKER_MANIFEST=application/vnd.docker.distribution.manifest.v2+json
LAYOUT_DOCKER_CONFIG=application/vnd.docker.container.image.v1+json

layout_init() {
  local dir=$1
  mkdir -p "$dir/blobs/sha256" || return 1
  printf '{"imageLayoutVersion":"1.0.0"}\n' > "$dir/oci-layout"
  [ -f "$dir/index.json" ] ||
    printf '{"schemaVersion":2,"mediaType":"%s","manifests":[]}\n' "$LAYOUT_OCI_INDEX" > "$dir/index.json"
}

_layout_sha256() { sha256sum "$1" | cut -d' ' -f1; }

layout_add_blob() {
  local dir=$1 file=$2 hex
  hex=$(_layout_sha256 "$file") || return 1
  [ -f "$dir/blobs/sha256/$hex" ] || cp "$file" "$dir/blobs/sha256/$hex" || return 1
  echo "sha256:$hex"
}

layout_add_json() {
  local dir=$1 json=$2 tmp
  tmp=$(mktemp "$dir/.blob.XXXXXX") || return 1
  printf '%s' "$json" > "$tmp"
  layout_add_blob "$dir" "$tmp"
  local rc=$?
  rm -f "$tmp"
  return $rc
}

_layout_blob_size() { stat -c %s "$1/blobs/sha256/${2#sha256:}"; }
_layout_blob() { cat "$1/blobs/sha256/${2#sha256:}"; }

# _layout_tag DIR TAG DESCRIPTOR-JSON: (re)points TAG in index.json at the descriptor.
_layout_tag() {
  local dir=$1 tag=$2 desc=$3 tmp
  tmp=$(mktemp "$dir/.index.XXXXXX") || return 1
  jq -c --arg tag "$tag" --argjson d "$desc" '
    .manifests = ([.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] != $tag)]
                  + [$d + {annotations: {"org.opencontainers.image.ref.name": $tag}}])' \
    "$dir/index.json" > "$tmp" && mv "$tmp" "$dir/index.json"
}

# _layout_platform_json OS/ARCH[/VARIANT] -> {"architecture":..,"os":..[,"variant":..]}
_layout_platform_json() {
  local os arch variant
  IFS=/ read -r os arch variant <<< "$1"
  [ -n "$os" ] && [ -n "$arch" ] || { echo "bad platform '$1' (want os/arch[/variant])" >&2; return 1; }
  jq -cn --arg os "$os" --arg arch "$arch" --arg v "${variant:-}" \
    '{architecture: $arch, os: $os} + (if $v == "" then {} else {variant: $v} end)'
}

layout_image() {
  local dir=$1 tag=$2; shift 2
  local platform=linux/amd64 media=oci layers=()
  while [ $# -gt 0 ]; do
    case $1 in
      --platform) platform=$2; shift 2 ;;
      --media) media=$2; shift 2 ;;
      *) layers+=("$1"); shift ;;
    esac
  done
  case $media in oci|docker) ;; *) echo "layout_image: --media oci|docker, not '$media'" >&2; return 1 ;; esac

  local plat layer tar comp diff_ids=() descs=() mt digest tmp
  plat=$(_layout_platform_json "$platform") || return 1
  for layer in "${layers[@]}"; do
    tar=${layer%:*} comp=${layer##*:}
    [ "$tar" != "$layer" ] || { echo "layout_image: layer '$layer' is not PATH:gzip|zstd|none" >&2; return 1; }
    [ -f "$tar" ] || { echo "layout_image: no such layer tar: $tar" >&2; return 1; }
    diff_ids+=("sha256:$(_layout_sha256 "$tar")")
    tmp=$(mktemp "$dir/.layer.XXXXXX") || return 1
    case $media/$comp in
      oci/gzip)    mt=application/vnd.oci.image.layer.v1.tar+gzip; gzip -n -c "$tar" > "$tmp" ;;
      oci/zstd)    mt=application/vnd.oci.image.layer.v1.tar+zstd; zstd -q --no-progress -c "$tar" > "$tmp" ;;
      oci/none)    mt=application/vnd.oci.image.layer.v1.tar; cp "$tar" "$tmp" ;;
      docker/gzip) mt=application/vnd.docker.image.rootfs.diff.tar.gzip; gzip -n -c "$tar" > "$tmp" ;;
      docker/none) mt=application/vnd.docker.image.rootfs.diff.tar; cp "$tar" "$tmp" ;;
      *) rm -f "$tmp"; echo "layout_image: compression '$comp' not possible with $media media types" >&2; return 1 ;;
    esac || { rm -f "$tmp"; return 1; }
    digest=$(layout_add_blob "$dir" "$tmp") || { rm -f "$tmp"; return 1; }
    rm -f "$tmp"
    descs+=("$(jq -cn --arg mt "$mt" --arg d "$digest" --argjson s "$(_layout_blob_size "$dir" "$digest")" \
      '{mediaType: $mt, digest: $d, size: $s}')")
  done

  _layout_write_image "$dir" "$tag" "$plat" "$media" "${#diff_ids[@]}" "${diff_ids[@]}" "${descs[@]}"
}

layout_image_blobs() {
  local dir=$1 tag=$2; shift 2
  local plat blob digest diff_ids=() descs=()
  plat=$(_layout_platform_json linux/amd64) || return 1
  while [ $# -ge 2 ]; do
    blob=$1; diff_ids+=("$2"); shift 2
    digest=$(layout_add_blob "$dir" "$blob") || return 1
    descs+=("$(jq -cn --arg d "$digest" --argjson s "$(_layout_blob_size "$dir" "$digest")" \
      '{mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: $d, size: $s}')")
  done
  _layout_write_image "$dir" "$tag" "$plat" oci "${#diff_ids[@]}" "${diff_ids[@]}" "${descs[@]}"
}

# _layout_write_image DIR TAG PLATFORM-JSON MEDIA N DIFFID*N DESCRIPTOR*N
_layout_write_image() {
  local dir=$1 tag=$2 plat=$3 media=$4 n=$5; shift 5
  local diff_ids=("${@:1:$n}") descs=("${@:$((n + 1))}")
  local config_mt manifest_mt config cdigest manifest mdigest
  if [ "$media" = docker ]; then
    config_mt=$LAYOUT_DOCKER_CONFIG manifest_mt=$LAYOUT_DOCKER_MANIFEST
  else
    config_mt=$LAYOUT_OCI_CONFIG manifest_mt=$LAYOUT_OCI_MANIFEST
  fi
  # A fixed creation time keeps configs (and so digests) reproducible.
  config=$(printf '%s\n' "${diff_ids[@]}" | jq -cRn --argjson p "$plat" '
    $p + {created: "2020-01-01T00:00:00Z",
          config: {Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
          rootfs: {type: "layers", diff_ids: [inputs]}}') || return 1
  cdigest=$(layout_add_json "$dir" "$config") || return 1
  manifest=$(printf '%s\n' "${descs[@]}" | jq -cn --arg mt "$manifest_mt" --arg cmt "$config_mt" \
    --arg cd "$cdigest" --argjson cs "$(_layout_blob_size "$dir" "$cdigest")" '
    {schemaVersion: 2, mediaType: $mt, config: {mediaType: $cmt, digest: $cd, size: $cs},
     layers: [inputs]}') || return 1
  mdigest=$(layout_add_json "$dir" "$manifest") || return 1
  _layout_tag "$dir" "$tag" "$(jq -cn --arg mt "$manifest_mt" --arg d "$mdigest" \
    --argjson s "$(_layout_blob_size "$dir" "$mdigest")" --argjson p "$plat" \
    '{mediaType: $mt, digest: $d, size: $s, platform: $p}')" || return 1
  echo "$mdigest"
}


layout_index() {
  local dir=$1 tag=$2; shift 2
  local entries=() m mt cfg plat
  for m in "$@"; do
    mt=$(_layout_blob "$dir" "$m" | jq -r '.mediaType') || return 1
    cfg=$(_layout_blob "$dir" "$m" | jq -r '.config.digest') || return 1
    plat=$(_layout_blob "$dir" "$cfg" | jq -c '{architecture, os} + (if .variant then {variant} else {} end)') || return 1
    entries+=("$(jq -cn --arg mt "$mt" --arg d "$m" --argjson s "$(_layout_blob_size "$dir" "$m")" --argjson p "$plat" \
      '{mediaType: $mt, digest: $d, size: $s, platform: $p}')")
  done

  # The attestation manifest buildkit adds to every multi-platform push: an
  # in-toto statement as its only layer, platform unknown/unknown.
  local stmt sdigest acfg acdigest aman amdigest
  stmt=$(jq -cn --arg d "${1#sha256:}" '{_type: "https://in-toto.io/Statement/v0.1",
    predicateType: "https://spdx.dev/Document", subject: [{name: "corpus", digest: {sha256: $d}}],
    predicate: {spdxVersion: "SPDX-2.3"}}')
  sdigest=$(layout_add_json "$dir" "$stmt") || return 1
  acfg=$(jq -cn --arg d "$sdigest" '{architecture: "unknown", os: "unknown", config: {},
    rootfs: {type: "layers", diff_ids: [$d]}}')
  acdigest=$(layout_add_json "$dir" "$acfg") || return 1
  aman=$(jq -cn --arg cd "$acdigest" --argjson cs "$(_layout_blob_size "$dir" "$acdigest")" \
    --arg sd "$sdigest" --argjson ss "$(_layout_blob_size "$dir" "$sdigest")" --arg cmt "$LAYOUT_OCI_CONFIG" \
    --arg mt "$LAYOUT_OCI_MANIFEST" '
    {schemaVersion: 2, mediaType: $mt, config: {mediaType: $cmt, digest: $cd, size: $cs},
     layers: [{mediaType: "application/vnd.in-toto+json", digest: $sd, size: $ss,
               annotations: {"in-toto.io/predicate-type": "https://spdx.dev/Document"}}]}')
  amdigest=$(layout_add_json "$dir" "$aman") || return 1
  entries+=("$(jq -cn --arg mt "$LAYOUT_OCI_MANIFEST" --arg d "$amdigest" \
    --argjson s "$(_layout_blob_size "$dir" "$amdigest")" --arg ref "$1" '
    {mediaType: $mt, digest: $d, size: $s, platform: {architecture: "unknown", os: "unknown"},
     annotations: {"vnd.docker.reference.digest": $ref, "vnd.docker.reference.type": "attestation-manifest"}}')")

  local index idigest
  index=$(printf '%s\n' "${entries[@]}" | jq -cn --arg mt "$LAYOUT_OCI_INDEX" \
    '{schemaVersion: 2, mediaType: $mt, manifests: [inputs]}') || return 1
  idigest=$(layout_add_json "$dir" "$index") || return 1
  _layout_tag "$dir" "$tag" "$(jq -cn --arg mt "$LAYOUT_OCI_INDEX" --arg d "$idigest" \
    --argjson s "$(_layout_blob_size "$dir" "$idigest")" '{mediaType: $mt, digest: $d, size: $s}')" || return 1
  echo "$idigest"
}

layout_diff_ids() {
  local dir=$1 m=$2 cfg
  cfg=$(_layout_blob "$dir" "$m" | jq -r '.config.digest') || return 1
  _layout_blob "$dir" "$cfg" | jq -r '.rootfs.diff_ids[]'
}

# chainID(L1) = diffID(L1); chainID(Ln) = sha256(chainID(Ln-1) + " " + diffID(Ln)).
chain_ids() {
  local chain="" d
  for d in "$@"; do
    if [ -z "$chain" ]; then chain=$d
    else chain="sha256:$(printf '%s %s' "$chain" "$d" | sha256sum | cut -d' ' -f1)"; fi
    echo "$chain"
  done
}

layout_chain_ids() {
  local ids
  ids=$(layout_diff_ids "$1" "$2") || return 1
  # shellcheck disable=SC2086 # digests have no blanks
  chain_ids $ids
}

# _layout_push_blob REPO DIGEST FILE: monolithic upload unless already there.
_layout_push_blob() {
  local repo=$1 digest=$2 file=$3 base="http://$REGISTRY" loc sep
  curl -sf -o /dev/null -I "$base/v2/$repo/blobs/$digest" && return 0
  loc=$(curl -sf -o /dev/null -D - -X POST "$base/v2/$repo/blobs/uploads/" | tr -d '\r' |
        sed -n 's/^[Ll]ocation: //p') || {
    echo "layout_push_raw: starting an upload to $repo failed" >&2; return 1; }
  [ -n "$loc" ] || { echo "layout_push_raw: no upload location from $REGISTRY" >&2; return 1; }
  case $loc in /*) loc=$base$loc ;; esac
  case $loc in *\?*) sep='&' ;; *) sep='?' ;; esac
  curl -sf -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' \
    --data-binary "@$file" "$loc${sep}digest=$digest" || {
    echo "layout_push_raw: uploading $digest to $repo failed" >&2; return 1; }
}

# _layout_push_manifest DIR REPO DIGEST REFERENCE: the manifest (or index) and,
# first, everything it points at.
_layout_push_manifest() {
  local dir=$1 repo=$2 digest=$3 ref=$4 file mt d m
  file=$dir/blobs/sha256/${digest#sha256:}
  mt=$(jq -r '.mediaType' "$file") || return 1
  case $mt in
    *index*|*manifest.list*)
      for m in $(jq -r '.manifests[].digest' "$file"); do
        _layout_push_manifest "$dir" "$repo" "$m" "$m" || return 1
      done ;;
    *)
      # A non-distributable (foreign) layer the layout does not hold is
      # pushed as it is published: its manifest entry only.
      for d in $(jq -r '.config.digest, (.layers[] | select((.mediaType | test("nondistributable|foreign")) and (.urls | length) > 0 | not) | .digest)' "$file"); do
        _layout_push_blob "$repo" "$d" "$dir/blobs/sha256/${d#sha256:}" || return 1
      done
      for d in $(jq -r '.layers[] | select((.mediaType | test("nondistributable|foreign")) and (.urls | length) > 0) | .digest' "$file"); do
        [ -f "$dir/blobs/sha256/${d#sha256:}" ] && { _layout_push_blob "$repo" "$d" "$dir/blobs/sha256/${d#sha256:}" || return 1; }
      done ;;
  esac
  curl -sf -o /dev/null -X PUT -H "Content-Type: $mt" --data-binary "@$file" \
    "http://$REGISTRY/v2/$repo/manifests/$ref" || {
    echo "layout_push_raw: the registry refused manifest $digest ($mt) for $repo:$ref" >&2; return 1; }
}

layout_push_raw() {
  local dir=$1 tag=$2 dst=$3 digest
  : "${REGISTRY:?registry_start first}"
  digest=$(jq -r --arg t "$tag" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t) | .digest' \
    "$dir/index.json") || return 1
  [ -n "$digest" ] || { echo "layout_push_raw: no tag $tag in $dir" >&2; return 1; }
  _layout_push_manifest "$dir" "${dst%:*}" "$digest" "${dst##*:}"
}
