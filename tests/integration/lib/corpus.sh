# The conformance corpus: small images that together hit everything
# containerd's applier (archive/tar.go with the overlayfs snapshotter) treats
# specially.  Layer tars come from text specs through mklayer, images are OCI
# layouts (lib/layout.sh), pushed to the private registry.
#   . lib/common.sh; . lib/registry.sh; . lib/layout.sh; . lib/corpus.sh
#   (and lib/containerd.sh for the reference_* functions)
#
#   corpus_build DIR     specs in DIR/specs, tars in DIR/layers, the layout in
#                        DIR/layout; sets CORPUS_DIR=DIR
#   corpus_push [DIR]    pushes every image to $REGISTRY
#   corpus_images [DIR]  "REF PLATFORM" per image to pull, REF with $REGISTRY
#   corpus_manifest REF PLATFORM [DIR]
#                        the layout's manifest digest for that image; its
#                        chainIDs: layout_chain_ids DIR/layout DIGEST
#   reference_pull_all   pulls every corpus image into the private containerd;
#                        sets REFERENCE_START (the time before the first pull);
#                        "REF PLATFORM TOP-CHAINID" lines in $CONTAINERD_DIR/pulled.list
#   reference_dump_all OUTDIR [EPOCH]
#                        OUTDIR/<chainID>.txt = treedump --stamped-after EPOCH
#                        (default $REFERENCE_START) of every snapshot, and
#                        OUTDIR/images.txt = "REF PLATFORM CHAINID..." per image
#                        (chainIDs bottom layer first)
#
# chainIDs, two independent ways: from containerd, the top one printed by
# `ctr images pull --print-chainid` and the Parent of each snapshot below it
# (containerd_chain in lib/containerd.sh; `ctr -n k8s.io snapshots ls` lists
# them all); from the image, chain_ids over the config's rootfs.diff_ids
# (layout_chain_ids).  t_reference checks that both agree.
#
# Images (platform linux/amd64 unless said):
#   corpus/kinds:v1      OCI, gzip.  base + changes + more: every entry kind,
#                        mode, owner, time and xattr case; first-layer
#                        whiteouts; whiteouts, opaque dirs and copy-ups above.
#   corpus/shared:v1     OCI.  base again but zstd-compressed (another blob,
#                        the same diffID, so the same chainID: containerd does
#                        not apply it again) + app (gzip).
#   corpus/moved:v1      OCI, uncompressed + zstd, pushed byte for byte.
#                        changes as the FIRST layer (same diffID as in kinds,
#                        other chainID: whiteouts just delete there), an empty
#                        layer twice, app on another parent.
#   corpus/docker:v1     Docker schema 2 (skopeo --format v2s2): base + docker.
#   corpus/dockerraw:v1  Docker schema 2 media types with an uncompressed
#                        rootfs.diff.tar layer, pushed byte for byte.
#   corpus/multi:v1      index: linux/amd64 (base + amd64), linux/arm64/v8
#                        (arm64), and a buildkit attestation manifest
#                        (unknown/unknown), pulled once per platform.
#
# Every time in the corpus is in 2001-2020 (one is negative: containerd clamps
# it to 0), far older than any test run, so `treedump --stamped-after START`
# tells extraction-time stamps apart on both sides.
#
# What containerd 1.6 REFUSES (kept out of this corpus; each is a "must refuse"
# test for sbdisk).  Checked against the real daemon; the error it gives:
#   R1  a later layer: X, then .wh.X in the same layer ("failed to convert
#       whiteout file: file exists": mknod over X in the upper dir)
#   R2  a later layer: directory X/, then .wh.X ("file exists", as R1)
#   R3  the first layer: directory d/, then .wh.d (the whiteout deletes d, then
#       the deferred directory times fail: "UtimesNanoAt ... no such file")
#   R4  any layer: d/, a file d replacing it, then .wh.d (as R3)
#   R5  a whiteout named ".wh.." or ".wh." ("invalid whiteout name: invalid archive")
#   R6  a hardlink to a path that does not exist in this layer: a name nothing
#       has, or a file that only a LOWER layer has ("link ...: no such file")
#   R7  a hardlink to a directory, to ".." or to "a/.." (both resolve to the
#       layer root) ("link ...: operation not permitted")
#   R8  an entry below a non-directory of the same layer: f then f/x, or
#       f/.wh..wh..opq ("mkparent ...: not a directory")
#   R9  a later layer: .wh.d then d/x or d/.wh.y in the same layer: d is the
#       whiteout device now ("mkparent ...: not a directory")
#   R10 a symlink loop on the way to an entry: a -> b, b -> a, then a/x
#       ("failed to get root path: too many links")
#   R12 a name longer than 255 bytes: a file, a directory on the way, or the
#       name a whiteout hides ("file name too long" from the host filesystem)
#   R11 (read in the source, not run: mklayer cannot write them) typeflags
#       the applier does not know, e.g. 'V' or 'A' ("unhandled tar header
#       type"); a diffID that does not match the uncompressed stream; a
#       truncated or corrupt stream.
# Accepted although surprising (so in the corpus, not refused): a trusted.*
# xattr (dropped), user.* on a symlink, device or fifo (dropped), an entry
# naming the root ("./", ignored entirely), ".wh.X" for an X that never
# existed (a first layer: nothing; a later one: a whiteout device anyway).
# Left out because the result depends on the host's LSM: other security.*
# xattrs (without an LSM, containerd sets security.foo as given).

# --- layer specs ------------------------------------------------------------

# The first layer of kinds, shared, docker and multi/amd64.
_corpus_spec_base() {
  cat <<'EOF'
# The root entry is ignored: the snapshot root stays 0755 root:root.
dir  ./                     0700 5 5 1500000000
dir  etc                    0755 0 0 1500000001.100000000
file etc/passwd             0644 0 0 1500000001.123456789 text:root:x:0:0:root:/root:/bin/sh\x0a
file etc/shadow             0000 0 42 1500000001.5 text:root:*:18000:0:99999:7:::\x0a
file etc/hl-target          0644 0 0 1500000001 text:hardlink\x20target\x0a
file etc/hl2                0644 0 0 1500000001 text:metadata\x20from\x20the\x20link\x0a
dir  tmp                    1777 0 0 1500000002
dir  srv                    2755 0 50 1500000002
dir  private                0700 1000 1000 1500000002
dir  nobody                 0755 65534 65534 1500000002
dir  usr                    0755 0 0 1500000003
dir  usr/bin                0751 100000 100000 1500000003.000000001 xattr:user.dircomment=binaries
file usr/bin/ping           4755 0 0 1500000004 rand:4096:1 fcap:cap_net_raw+ep
file usr/bin/newgrp         2755 0 65534 1500000004 rand:1000:2
file usr/bin/open           0777 0 0 1500000004 text:#!/bin/sh\x0a
file usr/bin/closed         0000 0 0 1500000004 text:secret
file usr/bin/sticky         1755 0 0 1500000004 empty
file usr/bin/cap            0755 0 0 1500000004 rand:512:3 fcap:cap_net_bind_service+ep
# A hardlink header carrying the capability again (as docker writes it) keeps
# it; one without loses it: containerd chowns the inode again, and the kernel
# drops security.capability on chown.
file usr/bin/capkeep        0755 0 0 1500000004 rand:512:4 fcap:cap_net_bind_service,cap_net_admin+eip
hardlink usr/bin/capkeep-link usr/bin/capkeep fcap:cap_net_bind_service,cap_net_admin+eip
file usr/bin/caplost        0755 0 0 1500000004 rand:512:5 fcap:cap_sys_time+ep
hardlink usr/bin/caplost-link usr/bin/caplost
symlink bin                 usr/bin 0 0 1500000005
# Owners, numeric only.
file owners/uid100000       0644 100000 100000 1500000006 text:a
file owners/uid-max         0640 4294967294 4294967294 1500000006 text:b
file owners/nobody          0600 65534 65534 1500000006 text:c
# Times.
file time/negative          0644 0 0 -1 empty
file time/nanos             0644 0 0 1234567890.000000001 empty
file time/atime             0644 0 0 1234567890.5 empty atime=1300000000
dir  time/dir               0755 0 0 1500000000.999999999
# Data.
file data/big               0644 0 0 1500000007 rand:2097152:42
file data/zeros             0644 0 0 1500000007 zeros:1048576
file data/empty             0644 0 0 1500000007 empty
# Links and special files.
symlink etc/abs-link        /etc/passwd 0 0 1500000008
symlink dangling            /nonexistent/target 0 0 1500000008
symlink lnk-xattr           etc/passwd 0 0 1500000008 xattr:user.dropped=symlink
hardlink etc/passwd-hl      etc/passwd
hardlink sym-hl             bin
hardlink meta-hl            etc/hl2 0600 7 7 1500000009
char  dev/null              1 3 0666 0 0 1500000010
char  dev/console           5 1 0620 0 5 1500000010
block dev/sda               8 0 0660 0 6 1500000010
block dev/bigdev            259 100000 0600 0 0 1500000010
char  dev/xattr-dev         1 5 0666 0 0 1500000010 xattr:user.dropped=device
fifo  run/fifo              0600 0 0 1500000010
fifo  run/fifo-xattr        0644 0 0 1500000010 xattr:user.dropped=fifo
# xattrs: user.* kept on files and directories, binary and empty values too;
# trusted.* dropped.
file xattrs/user            0644 0 0 1500000011 empty xattr:user.a=1 xattr:user.binary=\x00\x01\xff xattr:user.empty=
file xattrs/trusted         0644 0 0 1500000011 empty xattr:trusted.secret=1 xattr:user.kept=1
dir  xattrs/dir             0755 0 0 1500000011 xattr:user.on-dir=yes
# Awkward names.
file odd/with\x20space      0644 0 0 1500000012 empty
file odd/a=b,c              0644 0 0 1500000012 empty
file odd/utf8-\xc3\xa9      0644 0 0 1500000012 empty
file odd/latin1-\xe9        0644 0 0 1500000012 empty
# Order: duplicates (the later wins), a file replaced by a directory and back
# (the file then gets the directory header's times: directory times are set
# after the last entry, by path), a directory after its children, a
# directory twice.
file dup                    0644 0 0 1500000013 text:first
file dup                    0600 1 1 1500000014 text:second
file f2d                    0644 0 0 1500000013 text:file
dir  f2d                    0711 0 0 1500000015.5
file f2d/child              0644 0 0 1500000013 empty
file f2d                    0640 0 0 1500000016 text:file\x20again
# ...and a directory replaced by a file and back: the child is gone.
dir  d2f                    0750 0 0 1500000013
file d2f/child              0644 0 0 1500000013 empty
file d2f                    0644 0 0 1500000014 text:now\x20a\x20file
dir  d2f                    0705 0 0 1500000015
file d2f/new                0644 0 0 1500000015 empty
file late/child             0644 0 0 1500000013 empty
dir  late                   0700 1000 1000 1500000017
dir  twice                  0755 0 0 1500000018 xattr:user.first=1
dir  twice                  0750 2 2 1500000019 xattr:user.second=1
# Parents never named: 0755 root, mtime stamped.
file unnamed/deep/file      0644 0 0 1500000020 empty
# Whiteouts in the first layer delete within it and leave nothing.
file wl/a                   0644 0 0 1500000021 empty
file wl/b                   0644 0 0 1500000021 empty
file wl/.wh.a               0644 0 0 1500000021 empty
file wl/.wh.never-existed   0644 0 0 1500000021 empty
file wl-unnamed/x/.wh.y     0644 0 0 1500000021 empty
dir  opq                    0755 0 0 1500000021
file opq/keep               0644 0 0 1500000021 empty
file opq/.wh..wh..opq       0644 0 0 1500000021 empty
# ...except that an opaque marker removes the parents the tar never named.
file opq-unnamed/sub/f      0644 0 0 1500000021 empty
file opq-unnamed/.wh..wh..opq 0644 0 0 1500000021 empty
# A name stays unpacked after a whiteout removed it: x, made again as a parent
# of x/f, survives the marker (containerd keeps names, not files).
dir  opq-again              0755 0 0 1500000021
dir  opq-again/x            0700 0 0 1500000021
file opq-again/.wh.x        0644 0 0 1500000021 empty
file opq-again/x/f          0644 0 0 1500000021 empty
file opq-again/.wh..wh..opq 0644 0 0 1500000021 empty
# Entries that try to leave the layer land inside it.
file ../esc-dotdot          0644 0 0 1500000022 text:1
file /esc-abs               0644 0 0 1500000022 text:2
file a/../../esc-mid        0644 0 0 1500000022 text:3
file ./esc-dot              0644 0 0 1500000022 text:4
file ../../../etc/esc-deep  0644 0 0 1500000022 text:5
symlink rootlink            / 0 0 1500000022
file rootlink/via-rootlink  0644 0 0 1500000022 text:6
symlink uplink              ../.. 0 0 1500000022
file uplink/via-uplink      0644 0 0 1500000022 text:7
dir  sub                    0755 0 0 1500000022
symlink sub/abs             /etc 0 0 1500000022
file sub/abs/via-abs        0644 0 0 1500000022 text:8
hardlink esc-hardlink       ../../etc/hl-target 0644 0 0 1500000001
hardlink esc-hardlink2      rootlink/etc/passwd 0644 0 0 1500000001.123456789
# ...aimed at the disk's metadata files and at another snapshot.
file ../../snapshots.metadata 0644 0 0 1500000022 text:not\x20the\x20disk's
file ../../../images.metadata 0644 0 0 1500000022 text:not\x20the\x20disk's\x20either
file ../1/fs/esc-other-snapshot 0644 0 0 1500000022 text:9
symlink metalink            ../../../ 0 0 1500000022
file metalink/snapshots/2/fs/esc-via-metalink 0644 0 0 1500000022 text:10
hardlink esc-meta-hl        ../../snapshots.metadata 0644 0 0 1500000022
# For the layers above: a symlink to a directory, a directory an upper layer
# hides, things to delete, a directory left with only an opaque marker.
dir  realdir                0710 3 4 1500000023.5 xattr:user.rd=real
symlink lnkdir              realdir 0 0 1500000023
dir  hidden/x               0700 5 5 1500000023
file hidden/x/old           0644 0 0 1500000023 empty
file victim-file            0644 0 0 1500000023 empty
dir  victim-dir             0750 9 9 1500000023
file victim-dir/child       0644 0 0 1500000023 empty
dir  opaque-named           0755 0 0 1500000023
file opaque-named/old       0644 0 0 1500000023 empty
dir  opaque-only            0705 4 4 1500000023.25 xattr:user.oo=1
file opaque-only/old        0644 0 0 1500000023 empty
file l-file                 0644 0 0 1500000023 empty
dir  l-dir                  0755 0 0 1500000023
file l-dir/inner            0644 0 0 1500000023 empty
file re                     0644 0 0 1500000023 text:original
EOF
  # Names and targets longer than ustar holds (PAX path / linkpath records).
  printf 'file odd/%s 0644 0 0 1500000012 empty\n' "$(printf 'n%.0s' {1..150})"
  printf 'symlink odd/longlink /%s 0 0 1500000012\n' "$(printf 't%.0s' {1..130})"
  # A directory of 3000 entries: more than one ext4 block of names.
  local i
  for ((i = 0; i < 3000; i++)); do
    printf 'file data/many/entry-with-a-longish-name-%04d 0644 0 0 1500000024 empty\n' "$i"
  done
  echo 'dir  data/many 0755 0 0 1500000024'
}

# The second layer of kinds (and the first of moved).
_corpus_spec_changes() {
  cat <<'EOF'
# Whiteouts: char 0:0 devices owned by the header's uid/gid, even for names
# that never existed below.
file .wh.victim-file        0644 0 0 1600000000 empty
file .wh.victim-dir         0644 1000 1000 1600000000 empty
file .wh.never-existed      0644 0 0 1600000000 empty
# etc copied up (not named here), made opaque, then written to.
file etc/.wh..wh..opq       0644 0 0 1600000001 empty
file etc/new-passwd         0644 0 0 1600000001 text:new\x0a
# Opaque marker first, content after, in a directory the layer names.
dir  opaque-named           0755 0 0 1600000002
file opaque-named/.wh..wh..opq 0644 0 0 1600000002 empty
file opaque-named/after     0644 0 0 1600000002 empty
# Only an opaque marker: the copied-up directory keeps the lower mtime.
file opaque-only/.wh..wh..opq 0644 0 0 1600000002 empty
# Parents copied up from the lower layer: mode, owner, user.* xattrs.
file usr/bin/newtool        0755 0 0 1600000003 text:new
file tmp/.wh.nothing        0644 0 0 1600000003 empty
# Through a lower-layer symlink: the upper gets a real directory lnkdir, with
# the attributes of the directory the symlink pointed at.
file lnkdir/through         0644 0 0 1600000004 empty
# Hide hidden/ (layer 3 copies its child from layer 1 regardless).
file hidden/.wh..wh..opq    0644 0 0 1600000005 empty
# A named directory that exists below: no copy-up of its xattrs.
dir  xattrs/dir             0750 0 0 1600000006 xattr:user.upper=1
# A lower file replaced by a directory, a lower directory by a file.
dir  l-file                 0700 0 0 1600000007
file l-file/child           0644 0 0 1600000007 empty
file l-dir                  0644 0 0 1600000007 text:now\x20a\x20file
# Deleted, then written again in the same layer: the file replaces the device.
file .wh.re                 0644 0 0 1600000008 empty
file re                     0644 0 0 1600000008 text:again
# A hardlink within the layer; a duplicate.
file newfile                0644 0 0 1600000009 text:n
hardlink newfile-hl         newfile
file dup2                   0644 0 0 1600000009 text:one
file dup2                   0644 0 0 1600000010 text:two
EOF
}

# The third layer of kinds.
_corpus_spec_more() {
  cat <<'EOF'
# Copied up from layer 1 although layer 2 made hidden/ opaque.
file hidden/x/new           0644 0 0 1600000100 empty
# Not copied up: layer 2 has a whiteout device there, so 0755 root.
file victim-dir/reborn      0644 0 0 1600000100 empty
# Written again after a whiteout below.
file victim-file            0600 0 0 1600000100 text:back
# A whiteout of a file layer 2 added.
file etc/.wh.new-passwd     0644 0 0 1600000100 empty
# Never below: 0755 root.
file fresh/deep/file        0644 0 0 1600000100 empty
EOF
}

_corpus_spec_app() {
  cat <<'EOF'
dir  app                    0755 0 0 1580000000
file app/run.sh             0755 0 0 1580000000 text:#!/bin/sh\x0aexec\x20true\x0a
file etc/app.conf           0644 0 0 1580000000 text:key=value\x0a
file .wh.dup                0644 0 0 1580000000 empty
symlink app/current         /app 0 0 1580000000
EOF
}

_corpus_spec_empty() { :; }

_corpus_spec_docker() {
  cat <<'EOF'
dir  docker                 0755 0 0 1570000000
file docker/hello           0644 0 0 1570000000.5 text:hello\x20from\x20schema\x202
file .wh.dangling           0644 0 0 1570000000 empty
file srv/.wh..wh..opq       0644 0 0 1570000000 empty
file srv/www                0644 33 33 1570000000 empty
EOF
}

_corpus_spec_plain() {
  cat <<'EOF'
dir  plain                  0755 0 0 1560000000
file plain/file             0644 0 0 1560000000 rand:3000:9
hardlink plain/link         plain/file
EOF
}

_corpus_spec_amd64() {
  cat <<'EOF'
file arch                   0644 0 0 1550000000 text:amd64
EOF
}

_corpus_spec_arm64() {
  cat <<'EOF'
dir  etc                    0755 0 0 1550000000
file etc/os-release         0644 0 0 1550000000 text:ID=corpus\x0a
file arch                   0644 0 0 1550000000 text:arm64
symlink bin                 usr/bin 0 0 1550000000
file usr/bin/tool           0755 0 0 1550000000 rand:2048:64
EOF
}

CORPUS_LAYERS="base changes more app empty docker plain amd64 arm64"

# --- building and pushing ---------------------------------------------------

_corpus_image() {
  # _corpus_image TAG DEST PUSH PLATFORM [layout_image options and layers]
  local tag=$1 dest=$2 push=$3 platform=$4; shift 4
  local digest
  digest=$(layout_image "$CORPUS_DIR/layout" "$tag" --platform "$platform" "$@") || return 1
  printf '%s %s %s\n' "$tag" "$dest" "$push" >> "$CORPUS_DIR/push.list"
  printf '%s %s %s\n' "$dest" "$platform" "$digest" >> "$CORPUS_DIR/images.list"
}

corpus_build() {
  local dir=$1 name l
  : "${TOOLS:?set TOOLS to the test tools directory}"
  rm -rf "$dir" && mkdir -p "$dir/specs" "$dir/layers" || return 1
  CORPUS_DIR=$(cd "$dir" && pwd)
  layout_init "$CORPUS_DIR/layout" || return 1
  for name in $CORPUS_LAYERS; do
    "_corpus_spec_$name" > "$CORPUS_DIR/specs/$name.spec" || return 1
    # mklayer warns about the deliberately non-UTF-8 name; keep it quiet
    # unless it fails.
    if ! "$TOOLS/mklayer" "$CORPUS_DIR/specs/$name.spec" "$CORPUS_DIR/layers/$name.tar" \
         2> "$CORPUS_DIR/layers/$name.log"; then
      cat "$CORPUS_DIR/layers/$name.log" >&2
      return 1
    fi
  done
  l=$CORPUS_DIR/layers
  : > "$CORPUS_DIR/push.list"; : > "$CORPUS_DIR/images.list"
  _corpus_image kinds corpus/kinds:v1 skopeo linux/amd64 \
    "$l/base.tar:gzip" "$l/changes.tar:gzip" "$l/more.tar:gzip" || return 1
  _corpus_image shared corpus/shared:v1 skopeo linux/amd64 \
    "$l/base.tar:zstd" "$l/app.tar:gzip" || return 1
  _corpus_image moved corpus/moved:v1 raw linux/amd64 \
    "$l/changes.tar:none" "$l/empty.tar:zstd" "$l/app.tar:zstd" "$l/empty.tar:zstd" || return 1
  _corpus_image docker corpus/docker:v1 skopeo-v2s2 linux/amd64 \
    "$l/base.tar:gzip" "$l/docker.tar:gzip" || return 1
  _corpus_image dockerraw corpus/dockerraw:v1 raw linux/amd64 --media docker \
    "$l/docker.tar:gzip" "$l/plain.tar:none" || return 1

  local amd arm
  amd=$(layout_image "$CORPUS_DIR/layout" multi-amd64 --platform linux/amd64 \
    "$l/base.tar:gzip" "$l/amd64.tar:gzip") || return 1
  arm=$(layout_image "$CORPUS_DIR/layout" multi-arm64 --platform linux/arm64/v8 "$l/arm64.tar:gzip") || return 1
  layout_index "$CORPUS_DIR/layout" multi "$amd" "$arm" > /dev/null || return 1
  printf '%s %s %s\n' multi corpus/multi:v1 skopeo >> "$CORPUS_DIR/push.list"
  printf '%s %s %s\n' corpus/multi:v1 linux/amd64 "$amd" corpus/multi:v1 linux/arm64 "$arm" \
    >> "$CORPUS_DIR/images.list"
  export CORPUS_DIR
}

corpus_push() {
  local dir=${1:-${CORPUS_DIR:?corpus_build first}} tag dest how
  : "${REGISTRY:?registry_start first}"
  while read -r tag dest how; do
    case $how in
      skopeo)      registry_push "$dir/layout:$tag" "$dest" ;;
      skopeo-v2s2) registry_push "$dir/layout:$tag" "$dest" --format v2s2 ;;
      raw)         layout_push_raw "$dir/layout" "$tag" "$dest" ;;
    esac || { echo "corpus_push: pushing $tag to $dest ($how) failed" >&2; return 1; }
  done < "$dir/push.list"
}

corpus_images() {
  local dir=${1:-${CORPUS_DIR:?corpus_build first}} dest platform digest
  while read -r dest platform digest; do
    printf '%s/%s %s\n' "$REGISTRY" "$dest" "$platform"
  done < "$dir/images.list"
}

corpus_manifest() {
  local ref=$1 platform=$2 dir=${3:-${CORPUS_DIR:?corpus_build first}}
  awk -v r="${ref#"$REGISTRY"/}" -v p="$platform" '$1 == r && $2 == p { print $3 }' "$dir/images.list"
}

# --- the reference ----------------------------------------------------------

reference_pull_all() {
  local ref platform top
  : "${CONTAINERD_DIR:?containerd_start first}"
  REFERENCE_START=$(date +%s)
  export REFERENCE_START
  : > "$CONTAINERD_DIR/pulled.list"
  while read -r ref platform; do
    top=$(containerd_pull "$ref" --platform "$platform") || return 1
    [ -n "$top" ] || { echo "reference_pull_all: ctr printed no chainID for $ref" >&2; return 1; }
    printf '%s %s %s\n' "$ref" "$platform" "$top" >> "$CONTAINERD_DIR/pulled.list"
  done < <(corpus_images)
}

reference_dump_all() {
  local out=$1 epoch=${2:-${REFERENCE_START:?reference_pull_all first}} ref platform top chain c dir
  mkdir -p "$out" || return 1
  : > "$out/images.txt"
  while read -r ref platform top; do
    chain=$(containerd_chain "$top") || return 1
    # shellcheck disable=SC2086 # chainIDs have no blanks
    echo "$ref $platform" $chain >> "$out/images.txt"
    for c in $chain; do
      [ -f "$out/$c.txt" ] && continue
      dir=$(containerd_snapshot_dir "$c") || return 1
      "$TOOLS/treedump" --stamped-after "$epoch" "$dir" > "$out/$c.txt" ||
        { echo "reference_dump_all: treedump of $c failed" >&2; return 1; }
    done
  done < "$CONTAINERD_DIR/pulled.list"
}
