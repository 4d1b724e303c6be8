# What a build gives a pipeline: reproducible bytes, --json and --json=flat,
# the GCE import archive (--gce-tar, checked with GNU tar), --name and its
# gcloud commands.  Images come from a loopback docker-registry.
. "$(dirname "$0")/lib/common.sh"
. "$TESTS_DIR/lib/registry.sh"
. "$TESTS_DIR/lib/layout.sh"

demo="$REPO_DIR/examples/demo-image"
sha() { sha256sum "$1" | cut -d' ' -f1; }

registry_start || { fail "registry starts" "see above"; exit 1; }
# A second image with a few MiB: a file of random bytes, one of zeros (stored
# sparse), a directory of small files, and a later layer that deletes one.
mkdir -p "$T/l1/data/small" "$T/l2/data"
head -c $((3 * 1024 * 1024 + 123)) /dev/urandom > "$T/l1/data/random.bin"
head -c $((5 * 1024 * 1024)) /dev/zero > "$T/l1/data/zeros.bin"
for i in $(seq 1 200); do echo "file $i" > "$T/l1/data/small/f$i"; done
echo replaced > "$T/l2/data/random.bin"
tar -C "$T/l1" --sort=name --mtime=@1600000000 --owner=0 --group=0 -cf "$T/l1.tar" data
tar -C "$T/l2" --sort=name --mtime=@1600000001 --owner=0 --group=0 -cf "$T/l2.tar" data
layout_init "$T/layout" && layout_image "$T/layout" mixed "$T/l1.tar:gzip" "$T/l2.tar:zstd" >/dev/null &&
  layout_push_raw "$T/layout" mixed sbdisk/mixed:1 && registry_push "$demo:1.0" sbdisk/demo:1.0 ||
  { fail "push the test images"; exit 1; }
ok "push the test images"
refs=("$REGISTRY/sbdisk/demo:1.0" "$REGISTRY/sbdisk/mixed:1")

# --- reproducible: other directory, other cache, other time, other --jobs ---
mkdir -p "$T/a" "$T/b"
if (cd "$T/a" && "$SBDISK" build -q --cache-dir "$T/cache-a" --jobs 1 -o disk.raw "${refs[@]}") 2>"$T/err"; then
  ok "first build"; else fail "first build" "$(cat "$T/err")"; fi
sleep 1.1
if (cd "$T/b" && "$SBDISK" build -q --cache-dir "$T/cache-b" --jobs 4 -o disk.raw "${refs[@]}") 2>"$T/err"; then
  ok "second build"; else fail "second build" "$(cat "$T/err")"; fi
if out=$(sparse_cmp "$T/a/disk.raw" "$T/b/disk.raw" 2>&1); then ok "two builds, other dirs, caches, times and --jobs: identical bytes"
else fail "two builds are identical" "$out"; fi

# The stamped time, by default, is the newest image's creation time...
newest=0
for img in demo:1.0 mixed:1; do
  c=$(curl -sf "http://$REGISTRY/v2/sbdisk/${img%%:*}/blobs/$(curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "http://$REGISTRY/v2/sbdisk/${img%%:*}/manifests/${img#*:}" | jq -r .config.digest)" | jq -r '.created // empty')
  [ -n "$c" ] && t=$(date -d "$c" +%s) && [ "$t" -gt "$newest" ] && newest=$t
done
stamp=$(debugfs -R 'stat /snapshots' "$T/a/disk.raw" 2>/dev/null | sed -n 's/^ *mtime: 0x\([0-9a-f]*\).*/\1/p')
if [ -n "$stamp" ] && [ "$((16#$stamp))" = "$newest" ] && [ "$newest" -gt 0 ]; then
  ok "default time: the newest image's creation time ($newest)"
else fail "default time: the newest image's creation time" "snapshots/ mtime 0x$stamp, newest created $newest"; fi
# ...and SOURCE_DATE_EPOCH, when set, wins.
if SOURCE_DATE_EPOCH=1234567890 "$SBDISK" build -q --cache-dir "$T/cache-a" -o "$T/sde.raw" "${refs[@]}" 2>"$T/err"; then
  stamp=$(debugfs -R 'stat /snapshots' "$T/sde.raw" 2>/dev/null | sed -n 's/^ *mtime: 0x\([0-9a-f]*\).*/\1/p')
  if [ "$((16#${stamp:-0}))" = 1234567890 ] && ! sparse_cmp "$T/sde.raw" "$T/a/disk.raw" 2>/dev/null; then
    ok "SOURCE_DATE_EPOCH stamps the disk"; else fail "SOURCE_DATE_EPOCH stamps the disk" "mtime 0x$stamp"; fi
else fail "SOURCE_DATE_EPOCH stamps the disk" "$(cat "$T/err")"; fi
if SOURCE_DATE_EPOCH=soon "$SBDISK" build -q --cache-dir "$T/cache-a" -o "$T/bad.raw" "${refs[@]}" 2>"$T/err"; then
  fail "a bad SOURCE_DATE_EPOCH is refused"
else
  rc=$?; if [ $rc = 2 ] && grep -q 'SOURCE_DATE_EPOCH="soon" is not a time' "$T/err"; then ok "a bad SOURCE_DATE_EPOCH is refused (exit 2)"
  else fail "a bad SOURCE_DATE_EPOCH is refused" "exit $rc: $(cat "$T/err")"; fi
fi

# --- --json ---------------------------------------------------------------
if "$SBDISK" build --cache-dir "$T/cache-a" -o "$T/j.raw" --json "${refs[@]}" > "$T/j.json" 2>"$T/j.err"; then
  ok "build --json"; else fail "build --json" "$(cat "$T/j.err")"; fi
if jq -e . "$T/j.json" >/dev/null 2>&1; then ok "--json: stdout is one JSON document"; else fail "--json: stdout is one JSON document" "$(head -c 300 "$T/j.json")"; fi
if grep -q 'Resolving' "$T/j.err" && ! grep -q 'Resolving' "$T/j.json"; then ok "--json: progress goes to stderr only"
else fail "--json: progress goes to stderr only"; fi
raw_sha=$(sparse_sha256 "$T/j.raw")
if [ "$(jq -r .sha256 "$T/j.json")" = "$raw_sha" ]; then ok "--json: sha256 is the raw file's"
else fail "--json: sha256 is the raw file's" "json $(jq -r .sha256 "$T/j.json"), file $raw_sha"; fi
size=$(jq -r .size_bytes "$T/j.json")
if [ "$size" = "$(stat -c %s "$T/j.raw")" ] && [ $((size % (1024 * 1024 * 1024))) = 0 ]; then ok "--json: size_bytes is the file's, whole GiB"
else fail "--json: size_bytes" "$size vs $(stat -c %s "$T/j.raw")"; fi
if [ "$(jq -r .output "$T/j.json")" = "$T/j.raw" ]; then ok "--json: output is the absolute path"; else fail "--json: output" "$(jq -r .output "$T/j.json")"; fi
# every layer's chainID, in snapshot order, is what snapshots.metadata lists
debugfs -R 'cat /snapshots.metadata' "$T/j.raw" 2>/dev/null | awk '{print $2, $1}' | sort > "$T/meta.txt"
jq -r '.images[].layers[] | "\(.snapshot) \(.chain_id)"' "$T/j.json" | sort -u > "$T/json-snap.txt"
if [ -s "$T/meta.txt" ] && diff -q "$T/meta.txt" "$T/json-snap.txt" >/dev/null; then ok "--json: layers name their snapshot and chainID as snapshots.metadata does"
else fail "--json: snapshots and chainIDs" "$(diff "$T/meta.txt" "$T/json-snap.txt" | tr '\n' ' ')"; fi
# the digests are the registry's: manifest digest from the registry's header, diffIDs from the config
want=$(curl -sfI -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$REGISTRY/v2/sbdisk/mixed/manifests/1" |
  tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: //p')
got=$(jq -r '.images[] | select(.ref | endswith("mixed:1")) | .manifest_digest' "$T/j.json")
if [ -n "$want" ] && [ "$got" = "$want" ]; then ok "--json: manifest digest is the registry's"; else fail "--json: manifest digest" "json $got, registry $want"; fi
if diff -q <(layout_diff_ids "$T/layout" "$want") <(jq -r '.images[] | select(.ref | endswith("mixed:1")) | .layers[].diff_id' "$T/j.json") >/dev/null; then
  ok "--json: diffIDs are the config's"; else fail "--json: diffIDs are the config's"; fi
files=$(jq -r '.images[] | select(.ref | endswith("mixed:1")) | .layers[0].files' "$T/j.json")
if [ "$files" = "$(find "$T/l1" -type f | wc -l)" ]; then ok "--json: a layer's file count ($files)"; else fail "--json: file count" "json $files"; fi

# --- --json=flat: what Terraform's external data source accepts ------------
if "$SBDISK" build -q --cache-dir "$T/cache-a" -o "$T/j.raw" --json=flat "${refs[@]}" > "$T/flat.json" 2>"$T/err"; then
  ok "build --json=flat"; else fail "build --json=flat" "$(cat "$T/err")"; fi
if jq -e 'type == "object" and ([.[] | type == "string"] | all)' "$T/flat.json" >/dev/null 2>&1; then
  ok "--json=flat: one object, every value a string"; else fail "--json=flat: every value a string" "$(cat "$T/flat.json")"; fi
if [ "$(jq -r 'keys_unsorted | join(",")' "$T/flat.json")" = "output,size_bytes,sha256,gce_tar,gce_tar_sha256,images" ]; then
  ok "--json=flat: its keys"; else fail "--json=flat: its keys" "$(jq -r 'keys_unsorted | join(",")' "$T/flat.json")"; fi
if [ "$(jq -r .sha256 "$T/flat.json")" = "$raw_sha" ] && [ "$(jq -r .size_bytes "$T/flat.json")" = "$(stat -c %s "$T/j.raw")" ]; then
  ok "--json=flat: sha256 and size_bytes"; else fail "--json=flat: sha256 and size_bytes"; fi
want_images="$REGISTRY/sbdisk/demo:1.0@$(jq -r '.images[0].digest' "$T/j.json"),$REGISTRY/sbdisk/mixed:1@$(jq -r '.images[1].digest' "$T/j.json")"
if [ "$(jq -r .images "$T/flat.json")" = "$want_images" ]; then ok "--json=flat: images as ref@digest"
else fail "--json=flat: images as ref@digest" "$(jq -r .images "$T/flat.json") vs $want_images"; fi
if "$SBDISK" build -q -o "$T/x.raw" --json=yaml "${refs[@]}" 2>"$T/err"; then fail "--json=yaml is refused"
else rc=$?; if [ $rc = 2 ] && grep -q -- '--json' "$T/err"; then ok "--json=yaml is refused (exit 2)"; else fail "--json=yaml is refused" "exit $rc"; fi; fi

# --- --gce-tar: the archive GCE imports, checked with GNU tar ---------------
gce_build() { (cd "$1" && "$SBDISK" build -q --cache-dir "$2" -o disk.raw --gce-tar disk.tar.gz --json "${refs[@]}" > out.json); }
if gce_build "$T/a" "$T/cache-a" 2>"$T/err"; then ok "build --gce-tar"; else fail "build --gce-tar" "$(cat "$T/err")"; fi
if [ -f "$T/a/disk.tar.gz" ]; then
  listing=$(tar --numeric-owner -tvzf "$T/a/disk.tar.gz" 2>&1)
  if [ "$(printf '%s\n' "$listing" | wc -l)" = 1 ] && [ "$(printf '%s' "$listing" | awk '{print $3, $6}')" = "$(stat -c %s "$T/a/disk.raw") disk.raw" ]; then
    ok "--gce-tar: one member, disk.raw, of the disk's size"; else fail "--gce-tar: one member disk.raw" "$listing"; fi
  magic=$(gzip -dc "$T/a/disk.tar.gz" | head -c 265 | tail -c 8 | od -An -c | tr -s ' ')
  if [ "$magic" = " u s t a r \0" ]; then ok "--gce-tar: oldgnu header"; else fail "--gce-tar: oldgnu header" "magic '$magic'"; fi
  type=$(gzip -dc "$T/a/disk.tar.gz" | head -c 157 | tail -c 1)
  if [ "$type" = S ]; then ok "--gce-tar: a GNU sparse member"; else fail "--gce-tar: a GNU sparse member" "typeflag '$type'"; fi
  mkdir -p "$T/x" && tar -C "$T/x" -xSzf "$T/a/disk.tar.gz"
  if out=$(sparse_cmp "$T/x/disk.raw" "$T/a/disk.raw" 2>&1); then ok "--gce-tar: GNU tar restores the raw file byte for byte"
  else fail "--gce-tar: GNU tar restores the raw file" "$out"; fi
  alloc=$(( $(stat -c %b "$T/x/disk.raw") * 512 ))
  if [ "$alloc" -lt $((256 * 1024 * 1024)) ]; then ok "--gce-tar: restored sparse ($alloc bytes allocated)"; else fail "--gce-tar: restored sparse" "$alloc bytes"; fi
  if [ "$(jq -r .gce_tar.sha256 "$T/a/out.json")" = "$(sha "$T/a/disk.tar.gz")" ] && [ "$(jq -r .gce_tar.path "$T/a/out.json")" = "$T/a/disk.tar.gz" ]; then
    ok "--gce-tar: --json gives its path and sha256"; else fail "--gce-tar: --json gives its path and sha256"; fi
  if gce_build "$T/b" "$T/cache-b" 2>"$T/err" && cmp -s "$T/a/disk.tar.gz" "$T/b/disk.tar.gz"; then
    ok "--gce-tar: reproducible too"; else fail "--gce-tar: reproducible" "$(cat "$T/err")"; fi
else
  fail "--gce-tar: the archive exists"
fi
# An archive that cannot be written is refused before anything is fetched,
# and the disk already there stays as it was.
before=$(sparse_digest "$T/a/disk.raw")
if "$SBDISK" build -q --cache-dir "$T/cold" -o "$T/a/disk.raw" --gce-tar "$T/nowhere/disk.tar.gz" "${refs[@]}" 2>"$T/err"; then
  fail "--gce-tar into a missing directory is refused"
else
  rc=$?
  if [ $rc = 2 ] && grep -q "$T/nowhere" "$T/err" && [ "$(sparse_digest "$T/a/disk.raw")" = "$before" ] &&
     [ -z "$(find "$T/cold" -type f 2>/dev/null)" ]; then
    ok "--gce-tar into a missing directory: exit 2 before any download, disk untouched"
  else fail "--gce-tar into a missing directory" "exit $rc: $(cat "$T/err")"; fi
fi
if "$SBDISK" build -q -o "$T/same" --gce-tar "$T/same" "${refs[@]}" 2>"$T/err"; then fail "--gce-tar onto -o is refused"
else rc=$?; if [ $rc = 2 ]; then ok "--gce-tar onto the disk itself is refused (exit 2)"; else fail "--gce-tar onto -o is refused" "exit $rc"; fi; fi

# --- --name ---------------------------------------------------------------
for bad in Cache 9cache cache- "with_underscore" "$(printf 'a%.0s' $(seq 1 40))" ""; do
  if "$SBDISK" build -q --cache-dir "$T/cold" -o "$T/n.raw" --name "$bad" "${refs[@]}" 2>"$T/err"; then
    fail "--name '$bad' is refused"
  else
    rc=$?; if [ $rc = 2 ] && grep -q -- "--name" "$T/err" && [ ! -e "$T/n.raw" ]; then ok "--name '${bad:0:12}…' is refused (exit 2, nothing built)"
    else fail "--name '$bad' is refused" "exit $rc: $(cat "$T/err")"; fi
  fi
done
name=$(printf 'a%.0s' $(seq 1 39))
if "$SBDISK" build --cache-dir "$T/cache-a" -o "$T/a/disk.raw" --gce-tar "$T/a/disk.tar.gz" --name "$name" "${refs[@]}" 2>"$T/err" >/dev/null; then
  if grep -q "gcloud compute images create $name .*--source-uri=gs://\$BUCKET/$name.tar.gz" "$T/err" &&
     grep -q "gcloud storage cp $T/a/disk.tar.gz gs://\$BUCKET/$name.tar.gz" "$T/err" &&
     grep -q -- "--enable-image-streaming .*--secondary-boot-disk=disk-image=projects/\$PROJECT/global/images/$name,mode=CONTAINER_IMAGE_CACHE" "$T/err"; then
    ok "--name (39 characters): prints the upload, image and node pool commands"
  else fail "--name: gcloud commands" "$(cat "$T/err")"; fi
else fail "--name with 39 characters builds" "$(cat "$T/err")"; fi
if "$SBDISK" build -q --cache-dir "$T/cache-a" -o "$T/a/disk.raw" --name my-cache --json "${refs[@]}" > "$T/n.json" 2>"$T/err" &&
   [ "$(jq -r .name "$T/n.json")" = my-cache ] && jq -r '.gcloud[]' "$T/n.json" | grep -q 'images/my-cache,mode=CONTAINER_IMAGE_CACHE'; then
  ok "--name with --json: the commands are in the object"; else fail "--name with --json" "$(cat "$T/err")"; fi

# --- progress: bars on a terminal, calm lines elsewhere -----------------------
if command -v script >/dev/null; then
  TERM=xterm script -qfec "stty cols 100; '$SBDISK' build --cache-dir '$T/cold-tty' -o '$T/tty.raw' --json ${refs[*]}" /dev/null > "$T/tty.out" 2>&1
  rc=$?
  if [ $rc = 0 ] && grep -q $'\033\\[2K' "$T/tty.out" && grep -q 'writing \[#*' "$T/tty.out" &&
     grep -Eq '[0-9]+/[0-9]+ [0-9a-f]{12} \[[#.]+\] ' "$T/tty.out" && grep -q 'Done: ' "$T/tty.out"; then
    ok "on a terminal: a bar per layer and one for writing, then the summary"
  else fail "on a terminal: bars" "exit $rc: $(tr -d '\033' < "$T/tty.out" | head -c 400)"; fi
  # the JSON still parses: the bars went to stderr (the terminal), not into it
  if tr -d '\r' < "$T/tty.out" | sed -n '/^{/,/^}/p' | jq -e .sha256 >/dev/null 2>&1; then
    ok "on a terminal: --json intact beside the bars"; else fail "on a terminal: --json intact"; fi
  TERM=xterm script -qfec "'$SBDISK' build -q --cache-dir '$T/cold-tty' -o '$T/tty.raw' ${refs[*]}" /dev/null > "$T/tty-q.out" 2>&1
  if [ ! -s "$T/tty-q.out" ]; then ok "on a terminal with -q: nothing printed"; else fail "on a terminal with -q" "$(head -c 200 "$T/tty-q.out")"; fi
else
  skip "progress on a terminal" "no script(1) to give sbdisk a terminal"
fi
"$SBDISK" build --cache-dir "$T/cache-a" -o "$T/pipe.raw" "${refs[@]}" 2> "$T/pipe.err" | cat
if ! grep -q $'\033' "$T/pipe.err" && grep -Eq '^  \[2/[0-9]+\] snapshots/2/fs ' "$T/pipe.err" && grep -q '^Done: ' "$T/pipe.err"; then
  ok "not a terminal: plain lines, no escape codes"; else fail "not a terminal: plain lines" "$(head -c 300 "$T/pipe.err")"; fi
