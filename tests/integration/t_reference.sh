#!/bin/bash
# Proves the conformance harness itself: mklayer, treedump, the layouts, the
# pushes and the private containerd.  The corpus is built, pushed and pulled
# into containerd, every committed snapshot is dumped, and known facts about
# containerd 1.6's applier are asserted on the dumps: these cases document what
# "faithful" means for sbdisk (see the notes in lib/corpus.sh).  Needs only the
# test tools, not sbdisk.
. "$(dirname "$0")/lib/common.sh"
. "$TESTS_DIR/lib/registry.sh"
. "$TESTS_DIR/lib/layout.sh"
. "$TESTS_DIR/lib/containerd.sh"
. "$TESTS_DIR/lib/corpus.sh"

MKLAYER=$TOOLS/mklayer
TREEDUMP=$TOOLS/treedump
REF=$T/ref

# --- helpers ----------------------------------------------------------------

# fact NAME DUMP PATH WANT...: the treedump line for PATH in DUMP satisfies
# every WANT:  key=value (that exact field), !key=value (not that field),
# xattr:K=HEX / !xattr:K (in / not in the xattrs field), absent (no line).
fact() {
  local name=$1 dump=$2 path=$3 line want xattrs; shift 3
  line=$(P=$path awk '$1 == ENVIRON["P"]' "$dump")
  xattrs=",$(printf '%s' "$line" | sed -n 's/.* xattrs=\([^ ]*\)$/\1/p'),"
  for want in "$@"; do
    if [ "$want" = absent ]; then
      [ -z "$line" ] || { fail "$name" "$path should not exist: $line"; return; }
      continue
    fi
    [ -n "$line" ] || { fail "$name" "$path is missing from $(basename "$dump")"; return; }
    case $want in
      '!xattr:'*) [[ $xattrs != *",${want#!xattr:}="* ]] || { fail "$name" "$path has xattr ${want#!xattr:}: $line"; return; } ;;
      xattr:*)    [[ $xattrs == *",${want#xattr:},"* ]] || { fail "$name" "$path lacks xattr ${want#xattr:}: $line"; return; } ;;
      '!'*)       [[ " $line " != *" ${want#!} "* ]] || { fail "$name" "$path has ${want#!}: $line"; return; } ;;
      *)          [[ " $line " == *" $want "* ]] || { fail "$name" "$path: want $want, got: $line"; return; } ;;
    esac
  done
  ok "$name"
}

sha_of() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
fcap_hex() { "$MKLAYER" --fcap "$1" | sed 's/\\x//g'; }

# chain REF-SUFFIX PLATFORM: the chainIDs containerd reports, bottom first.
chain() { awk -v r="$REGISTRY/$1" -v p="$2" '$1 == r && $2 == p { for (i = 3; i <= NF; i++) print $i }' "$REF/images.txt"; }
dump() { echo "$REF/$1.txt"; }

# --- the tools on their own -------------------------------------------------

spec=$T/tool.spec
printf '%s\n' 'file a 0644 0 0 1500000000.5 text:x xattr:user.k=\x00v' 'hardlink b a' > "$spec"
if "$MKLAYER" "$spec" "$T/t1.tar" && "$MKLAYER" "$spec" - > "$T/t2.tar" && cmp -s "$T/t1.tar" "$T/t2.tar"; then
  ok mklayer-deterministic
else
  fail mklayer-deterministic "two runs over one spec differ"
fi
if grep -aq 'SCHILY.xattr.user.k' "$T/t1.tar" && ! grep -aq 'LIBARCHIVE.xattr' "$T/t1.tar"; then
  ok mklayer-schily-xattrs-only
else
  fail mklayer-schily-xattrs-only "want SCHILY.xattr records and no LIBARCHIVE.xattr ones"
fi
if ! printf 'file x 0999 0 0 1 empty\n' | "$MKLAYER" - "$T/bad.tar" 2>/dev/null &&
   ! printf 'hardlink x nowhere\n' | "$MKLAYER" - "$T/bad.tar" 2>/dev/null; then
  ok mklayer-rejects-bad-specs
else
  fail mklayer-rejects-bad-specs "a bad mode or a hardlink without metadata was accepted"
fi
if ! "$TREEDUMP" "$T/does-not-exist" >/dev/null 2>&1; then ok treedump-fails-on-missing-dir
else fail treedump-fails-on-missing-dir "exit status 0"; fi

# --- corpus, registry --------------------------------------------------------

# (Not in $(...): these set variables the rest of the test uses.)
if ! corpus_build "$T/corpus" 2> "$T/err"; then
  fail corpus-build "$(tail -3 "$T/err")"; exit 0
fi
ok corpus-build
if ! registry_start; then fail registry-start "see above"; exit 0; fi
if ! corpus_push 2> "$T/err"; then fail corpus-push "$(tail -3 "$T/err")"; exit 0; fi
ok corpus-push

L=$CORPUS_DIR/layout
registry_manifest() {
  curl -sf -H 'Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' \
    "http://$REGISTRY/v2/${1%:*}/manifests/${1##*:}"
}
layout_manifest() { cat "$L/blobs/sha256/$(corpus_manifest "$REGISTRY/$1" "$2" | cut -d: -f2)"; }

m=$(registry_manifest corpus/docker:v1)
if [ "$(jq -r .mediaType <<< "$m")" = application/vnd.docker.distribution.manifest.v2+json ] &&
   [ "$(jq -c '[.config.digest, .layers[].digest]' <<< "$m")" = \
     "$(layout_manifest corpus/docker:v1 linux/amd64 | jq -c '[.config.digest, .layers[].digest]')" ]; then
  ok skopeo-v2s2-keeps-blobs
else
  fail skopeo-v2s2-keeps-blobs "registry has: $m"
fi
if [ "$(registry_manifest corpus/moved:v1 | sha256sum | cut -d' ' -f1)" = \
     "$(corpus_manifest "$REGISTRY/corpus/moved:v1" linux/amd64 | cut -d: -f2)" ] &&
   [ "$(registry_manifest corpus/dockerraw:v1 | jq -r '.layers[1].mediaType')" = application/vnd.docker.image.rootfs.diff.tar ]; then
  ok raw-push-is-byte-exact
else
  fail raw-push-is-byte-exact "the registry's manifest differs from the layout's"
fi
m=$(registry_manifest corpus/shared:v1)
if [ "$(jq -r '.layers[0].mediaType' <<< "$m")" = application/vnd.oci.image.layer.v1.tar+zstd ] &&
   [ "$(jq -r '.layers[0].digest' <<< "$m")" = "$(layout_manifest corpus/shared:v1 linux/amd64 | jq -r '.layers[0].digest')" ]; then
  ok skopeo-keeps-zstd-layers
else
  fail skopeo-keeps-zstd-layers "registry has: $m"
fi
m=$(registry_manifest corpus/multi:v1)
if [ "$(jq '.manifests | length' <<< "$m")" = 3 ] &&
   [ "$(jq -r '[.manifests[] | select(.annotations["vnd.docker.reference.type"] == "attestation-manifest") | .platform.os] | join(",")' <<< "$m")" = unknown ]; then
  ok index-with-attestation
else
  fail index-with-attestation "registry has: $m"
fi

# --- containerd ---------------------------------------------------------------

containerd_start
rc=$?
if [ $rc -eq 2 ]; then skip containerd-reference "$CONTAINERD_SKIP"; exit 0; fi
if [ $rc -ne 0 ]; then fail containerd-start "see above"; exit 0; fi
ok containerd-start

if ! reference_pull_all 2> "$T/err"; then fail pull-corpus "$(tail -3 "$T/err")"; exit 0; fi
ok pull-corpus
if ! reference_dump_all "$REF" 2> "$T/err"; then fail dump-snapshots "$(tail -3 "$T/err")"; exit 0; fi
missing=
for c in $(containerd_snapshots); do [ -s "$REF/$c.txt" ] || missing="$missing $c"; done
if [ -z "$missing" ] && [ "$(containerd_snapshots | wc -l)" -gt 0 ]; then
  ok dump-every-snapshot
else
  fail dump-every-snapshot "no dump for:$missing"
fi

bad=
while read -r ref platform; do
  want=$(layout_chain_ids "$L" "$(corpus_manifest "$ref" "$platform")" | tr '\n' ' ')
  got=$(awk -v r="$ref" -v p="$platform" '$1 == r && $2 == p { for (i = 3; i <= NF; i++) printf "%s ", $i }' "$REF/images.txt")
  [ -n "$want" ] && [ "$want" = "$got" ] || bad="$bad $ref($platform)"
done < <(corpus_images)
if [ -z "$bad" ]; then ok chainids-match-configs; else fail chainids-match-configs "differ for:$bad"; fi

ls_out=$(containerd_images_ls)
bad=
for ref in $(corpus_images | cut -d' ' -f1 | sort -u); do
  grep -q "^$ref .*io.cri-containerd.image=managed" <<< "$ls_out" || bad="$bad $ref"
done
if [ -z "$bad" ] && grep -q "^$REGISTRY/corpus/multi:v1 .*linux/amd64,linux/arm64/v8,unknown/unknown" <<< "$ls_out"; then
  ok images-ls-lists-labelled-images
else
  fail images-ls-lists-labelled-images "missing or unlabelled:$bad"
fi

mapfile -t K < <(chain corpus/kinds:v1 linux/amd64)
mapfile -t S < <(chain corpus/shared:v1 linux/amd64)
mapfile -t M < <(chain corpus/moved:v1 linux/amd64)
mapfile -t D < <(chain corpus/docker:v1 linux/amd64)
mapfile -t DR < <(chain corpus/dockerraw:v1 linux/amd64)
mapfile -t MA < <(chain corpus/multi:v1 linux/amd64)
mapfile -t MR < <(chain corpus/multi:v1 linux/arm64)
if [ ${#K[@]} -ne 3 ] || [ ${#S[@]} -ne 2 ] || [ ${#M[@]} -ne 4 ] || [ ${#D[@]} -ne 2 ] ||
   [ ${#DR[@]} -ne 2 ] || [ ${#MA[@]} -ne 2 ] || [ ${#MR[@]} -ne 1 ]; then
  fail layer-counts "kinds ${#K[@]} shared ${#S[@]} moved ${#M[@]} docker ${#D[@]} dockerraw ${#DR[@]} multi ${#MA[@]}+${#MR[@]}"
  exit 0
fi
ok layer-counts
L1=$(dump "${K[0]}") L2=$(dump "${K[1]}") L3=$(dump "${K[2]}")

# Layer 1: applied into a plain directory.
fact root-entry-ignored "$L1" . type=d mode=0755 uid=0 gid=0 mtime=stamped
fact setuid-file-with-capability "$L1" usr/bin/ping mode=4755 "xattr:security.capability=$(fcap_hex cap_net_raw+ep)"
fact setgid-file "$L1" usr/bin/newgrp mode=2755 gid=65534
fact sticky-dir "$L1" tmp type=d mode=1777
fact setgid-dir "$L1" srv type=d mode=2755 gid=50
fact mode-0000-file "$L1" usr/bin/closed mode=0000
fact mode-0777-file "$L1" usr/bin/open mode=0777
fact large-ids "$L1" owners/uid-max uid=4294967294 gid=4294967294
fact nanosecond-mtime "$L1" time/nanos mtime=1234567890.000000001
fact dir-mtime-set-last "$L1" time/dir mtime=1500000000.999999999
fact negative-mtime-clamped-to-0 "$L1" time/negative mtime=0.000000000
fact capability-kept-when-link-repeats-it "$L1" usr/bin/capkeep nlink-group=usr/bin/capkeep \
  "xattr:security.capability=$(fcap_hex cap_net_bind_service,cap_net_admin+eip)"
fact capability-lost-on-bare-hardlink "$L1" usr/bin/caplost nlink-group=usr/bin/caplost '!xattr:security.capability'
fact hardlink-header-sets-inode-metadata "$L1" etc/hl2 mode=0600 uid=7 gid=7 mtime=1500000009.000000000 nlink-group=etc/hl2
fact hardlink-to-symlink "$L1" sym-hl type=l target=usr/bin nlink-group=bin
fact block-device-large-numbers "$L1" dev/bigdev type=b rdev=259:100000 mode=0600
fact char-device "$L1" dev/console type=c rdev=5:1 mode=0620 gid=5
fact fifo "$L1" run/fifo type=p mode=0600
fact user-xattrs-binary-and-empty "$L1" xattrs/user xattr:user.a=31 xattr:user.binary=0001ff xattr:user.empty=
fact user-xattr-on-dir "$L1" xattrs/dir xattr:user.on-dir=796573
fact user-xattr-dropped-on-symlink "$L1" lnk-xattr type=l xattrs=-
fact user-xattr-dropped-on-device "$L1" dev/xattr-dev type=c xattrs=-
fact user-xattr-dropped-on-fifo "$L1" run/fifo-xattr type=p xattrs=-
fact trusted-xattr-dropped "$L1" xattrs/trusted '!xattr:trusted.secret' xattr:user.kept=31
fact duplicate-later-wins "$L1" dup mode=0600 uid=1 "sha256=$(sha_of second)"
fact file-dir-file-keeps-last-file "$L1" f2d type=f mode=0640 "sha256=$(sha_of 'file again')"
fact file-dir-file-gets-dir-times "$L1" f2d mtime=1500000015.500000000
fact file-dir-file-drops-children "$L1" f2d/child absent
fact dir-after-children "$L1" late type=d mode=0700 uid=1000 gid=1000 mtime=1500000017.000000000
fact dir-twice-merges-xattrs "$L1" twice mode=0750 uid=2 xattr:user.first=31 xattr:user.second=31
fact unnamed-parent-layer1 "$L1" unnamed/deep type=d mode=0755 uid=0 gid=0 mtime=stamped
fact first-layer-whiteout-deletes "$L1" wl/a absent
fact first-layer-whiteout-keeps-others "$L1" wl/b type=f
fact first-layer-whiteout-of-nothing "$L1" wl/never-existed absent
fact first-layer-whiteout-makes-parents "$L1" wl-unnamed/x type=d mode=0755 mtime=stamped
fact first-layer-opaque-no-marker "$L1" opq type=d '!xattr:trusted.overlay.opaque'
fact first-layer-opaque-keeps-layer-files "$L1" opq/keep type=f
fact first-layer-opaque-removes-unnamed-parents "$L1" opq-unnamed/sub absent
if ! grep -q ' type=c .*rdev=0:0 ' "$L1"; then ok first-layer-leaves-no-whiteout-devices
else fail first-layer-leaves-no-whiteout-devices "$(grep ' rdev=0:0 ' "$L1" | head -1)"; fi
if ! grep -qh '\(^\|/\)\.wh\.' "$REF"/sha256:*.txt; then ok no-whiteout-files-anywhere
else fail no-whiteout-files-anywhere "$(grep -h '\(^\|/\)\.wh\.' "$REF"/sha256:*.txt | head -1)"; fi
fact escape-dotdot "$L1" esc-dotdot "sha256=$(sha_of 1)"
fact escape-absolute "$L1" esc-abs "sha256=$(sha_of 2)"
fact escape-middle-dotdot "$L1" esc-mid "sha256=$(sha_of 3)"
fact escape-dot-prefix "$L1" esc-dot "sha256=$(sha_of 4)"
fact escape-deep-dotdot "$L1" etc/esc-deep "sha256=$(sha_of 5)"
fact escape-through-root-symlink "$L1" via-rootlink "sha256=$(sha_of 6)"
fact escape-through-dotdot-symlink "$L1" via-uplink "sha256=$(sha_of 7)"
fact escape-through-absolute-symlink "$L1" etc/via-abs "sha256=$(sha_of 8)"
fact escape-hardlink-target "$L1" etc/hl-target nlink-group=esc-hardlink
fact escape-hardlink-through-symlink "$L1" etc/passwd nlink-group=esc-hardlink2
leaks=$(find "$CONTAINERD_ROOT" \( -name 'esc-*' -o -name 'via-*' \) -not -path '*/snapshots/*/fs/*' 2>/dev/null)
for p in /esc-abs /esc-dotdot /esc-mid /via-rootlink /via-uplink /etc/esc-deep /etc/via-abs; do
  [ -e "$p" ] && leaks="$leaks $p"
done
if [ -z "$leaks" ]; then ok escapes-leave-nothing-outside; else fail escapes-leave-nothing-outside "$leaks"; fi
fact long-name "$L1" "odd/$(printf 'n%.0s' {1..150})" type=f
fact long-symlink-target "$L1" odd/longlink "target=/$(printf 't%.0s' {1..130})"
fact non-utf8-name "$L1" 'odd/latin1-\xe9' type=f
fact big-file "$L1" data/big size=2097152 \
  "sha256=$(tar -xOf "$CORPUS_DIR/layers/base.tar" data/big 2>/dev/null | sha256sum | cut -d' ' -f1)"
fact zero-file "$L1" data/zeros size=1048576 "sha256=$(head -c 1048576 /dev/zero | sha256sum | cut -d' ' -f1)"
n=$(grep -c '^data/many/' "$L1")
if [ "$n" -eq 3000 ]; then ok large-directory; else fail large-directory "$n entries, want 3000"; fi

# Layer 2: applied into the overlay upper directory.
fact whiteout-is-char-0-0 "$L2" victim-file type=c rdev=0:0 mode=0000 mtime=stamped
fact whiteout-owned-per-header "$L2" victim-dir type=c rdev=0:0 uid=1000 gid=1000
fact whiteout-of-nothing-still-a-device "$L2" never-existed type=c rdev=0:0
fact opaque-dir-copied-up "$L2" etc type=d mode=0755 xattr:trusted.overlay.opaque=79
fact opaque-marker-before-content "$L2" opaque-named/after type=f
fact opaque-dir-named "$L2" opaque-named xattr:trusted.overlay.opaque=79 mtime=1600000002.000000000
fact opaque-only-keeps-lower-attrs "$L2" opaque-only mode=0705 uid=4 gid=4 mtime=1500000023.250000000 \
  xattr:user.oo=31 xattr:trusted.overlay.opaque=79
fact copied-up-parent "$L2" usr/bin type=d mode=0751 uid=100000 gid=100000 \
  xattr:user.dircomment=62696e6172696573 mtime=stamped
fact copied-up-sticky-parent "$L2" tmp type=d mode=1777
fact copy-up-through-lower-symlink "$L2" lnkdir type=d mode=0710 uid=3 gid=4 xattr:user.rd=7265616c
fact named-dir-no-xattr-copy-up "$L2" xattrs/dir mode=0750 '!xattr:user.on-dir' xattr:user.upper=31
fact lower-file-becomes-dir "$L2" l-file type=d mode=0700
fact lower-dir-becomes-file "$L2" l-dir type=f
fact whiteout-then-file "$L2" re type=f "sha256=$(sha_of again)"
fact hardlink-in-upper "$L2" newfile-hl nlink-group=newfile

# Layer 3.
fact copy-up-ignores-opaque-layer "$L3" hidden/x type=d mode=0700 uid=5 gid=5
fact copy-up-skips-trusted-xattrs "$L3" hidden '!xattr:trusted.overlay.opaque'
fact copy-up-stops-at-whiteout "$L3" victim-dir type=d mode=0755 uid=0 gid=0
fact whiteout-of-upper-file "$L3" etc/new-passwd type=c rdev=0:0
fact recreated-after-whiteout "$L3" victim-file type=f mode=0600

# Sharing and positions.
if [ "${S[0]}" = "${K[0]}" ] && [ "${D[0]}" = "${K[0]}" ] && [ "${MA[0]}" = "${K[0]}" ] &&
   [ "$(containerd_snapshots | grep -cx "${K[0]}")" -eq 1 ]; then
  ok shared-layer-one-snapshot
else
  fail shared-layer-one-snapshot "kinds ${K[0]} shared ${S[0]} docker ${D[0]} multi ${MA[0]}"
fi
changes_diff=sha256:$(sha256sum "$CORPUS_DIR/layers/changes.tar" | cut -d' ' -f1)
if [ "${M[0]}" = "$changes_diff" ] && [ "${M[0]}" != "${K[1]}" ]; then
  ok same-diffid-other-position-other-chainid
else
  fail same-diffid-other-position-other-chainid "moved ${M[0]}, kinds ${K[1]}, diffID $changes_diff"
fi
M1=$(dump "${M[0]}")
if ! grep -q ' type=c ' "$M1" && ! grep -q 'trusted.overlay' "$M1"; then
  ok moved-first-layer-has-no-overlay-markers
else
  fail moved-first-layer-has-no-overlay-markers "$(grep -m1 ' type=c \|trusted.overlay' "$M1")"
fi
fact moved-first-layer-symlink-path-is-dir "$M1" lnkdir type=d mode=0755 mtime=stamped
if [ "$(wc -l < "$(dump "${M[1]}")")" -eq 1 ] && [ "$(wc -l < "$(dump "${M[3]}")")" -eq 1 ] && [ "${M[1]}" != "${M[3]}" ]; then
  ok empty-layer-twice
else
  fail empty-layer-twice "dumps of ${M[1]} / ${M[3]} are not just the root"
fi
fact whiteout-in-app-layer "$(dump "${M[2]}")" dup type=c rdev=0:0
fact app-copies-up-etc "$(dump "${S[1]}")" etc type=d mode=0755 mtime=stamped
fact docker-layer-copies-up-setgid-dir "$(dump "${D[1]}")" srv mode=2755 gid=50 xattr:trusted.overlay.opaque=79
fact docker-first-layer-opaque-plain "$(dump "${DR[0]}")" srv mode=0755 '!xattr:trusted.overlay.opaque'
fact docker-uncompressed-layer "$(dump "${DR[1]}")" plain/link nlink-group=plain/file
fact multi-amd64 "$(dump "${MA[1]}")" arch "sha256=$(sha_of amd64)"
fact multi-arm64 "$(dump "${MR[0]}")" arch "sha256=$(sha_of arm64)"
n_chains=$(cut -d' ' -f3- "$REF/images.txt" | tr ' ' '\n' | sort -u | wc -l)
if [ "$(containerd_snapshots | wc -l)" -eq "$n_chains" ]; then
  ok no-snapshot-for-attestation
else
  fail no-snapshot-for-attestation "$(containerd_snapshots | wc -l) snapshots for $n_chains chainIDs"
fi

# Nothing left behind.
containerd_stop
if ! grep -q " $T" /proc/self/mounts; then ok no-mounts-left; else fail no-mounts-left "$(grep " $T" /proc/self/mounts)"; fi
if ! kill -0 "$CONTAINERD_PID" 2>/dev/null; then ok containerd-stopped; else fail containerd-stopped "pid $CONTAINERD_PID"; fi
