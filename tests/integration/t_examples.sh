#!/bin/bash
# Checks examples/ (Terraform, Cloud Build, GitHub Actions, a pod) for what
# their consumers need, without a cloud and without the network: the YAML
# parses and has the structure Cloud Build, Actions and Kubernetes read;
# HashiCorp's HCL parser reads the Terraform and finds the resources that make
# the disk reach a node pool; every sbdisk command line uses options that
# `sbdisk build --help` lists; and where sbdisk prints --json, the fields the
# examples read are there.
. "$(dirname "$0")/lib/common.sh"

EX=$REPO_DIR/examples
CHECK=$TESTS_DIR/lib/examples.py
HCL2JSON_MODULES=$REPO_DIR/build-tools/hcl2json/node_modules
# The options landing with the GCE/pipeline work: reported as skipped, not
# failed, while `sbdisk build --help` does not list them yet.
NEW_OPTIONS=" --gce-tar --json --name "

examples() { python3 "$CHECK" "$@"; }

# --- YAML: parses, and has what its consumer reads ---------------------------

mapfile -t yamls < <(find "$EX" -path "$EX/demo-image" -prune -o \( -name '*.yaml' -o -name '*.yml' \) -print | sort)
if [ "${#yamls[@]}" -ge 3 ]; then
  check yaml-parse examples yaml-parse "${yamls[@]}"
else
  fail yaml-parse "want the Cloud Build, Actions and pod YAML, found ${#yamls[@]} files"
fi
check cloudbuild-structure examples cloudbuild "$EX/cloudbuild/cloudbuild.yaml"
check actions-structure examples actions "$EX/github-actions/build-disk.yml"
check pod-node-selector examples pod "$EX/kubernetes/pod.yaml"

# The checks reject what they should: a pod naming a 40-character image, and
# a Cloud Build step without the image it runs.
sed 's/gke-secondary-boot-disk-[a-z0-9-]*:/gke-secondary-boot-disk-a234567890123456789012345678901234567890:/' \
  "$EX/kubernetes/pod.yaml" > "$T/long-name.yaml"
if ! examples pod "$T/long-name.yaml" >/dev/null; then ok pod-check-rejects-long-name
else fail pod-check-rejects-long-name "a 40-character image name passed"; fi
python3 - "$EX/cloudbuild/cloudbuild.yaml" "$T/noname.yaml" <<'PY'
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
del doc["steps"][-1]["name"]
yaml.safe_dump(doc, open(sys.argv[2], "w"))
PY
if ! examples cloudbuild "$T/noname.yaml" >/dev/null; then ok cloudbuild-check-rejects-nameless-step
else fail cloudbuild-check-rejects-nameless-step "a step without name passed"; fi

# --- Terraform ---------------------------------------------------------------

export CHECKPOINT_DISABLE=1 # terraform's version check would go on the network
if command -v terraform >/dev/null; then
  check terraform-fmt terraform fmt -check -recursive -no-color "$EX/terraform"
  # init fetches providers from the network; this runs only from a local
  # filesystem mirror ($TF_PROVIDER_MIRROR, made with `terraform providers
  # mirror DIR`), in a copy so nothing lands in the work tree.
  mirror=${TF_PROVIDER_MIRROR:-$HOME/.terraform.d/plugins}
  cp -r "$EX/terraform" "$T/tf"
  rm -rf "$T/tf/.terraform" "$T/tf/.terraform.lock.hcl"
  printf 'provider_installation {\n  filesystem_mirror {\n    path = "%s"\n  }\n}\n' "$mirror" > "$T/tf.rc"
  if out=$(cd "$T/tf" && TF_CLI_CONFIG_FILE=$T/tf.rc terraform init -backend=false -input=false -no-color 2>&1); then
    check terraform-validate env -C "$T/tf" TF_CLI_CONFIG_FILE="$T/tf.rc" terraform validate -no-color
  elif grep -q 'Failed to query available provider packages\|not found in any of the search locations' <<<"$out"; then
    skip terraform-validate "the google and external providers are not in a local mirror ($mirror; set TF_PROVIDER_MIRROR), and the test stays off the network"
  else
    fail terraform-validate "terraform init: $(tail -5 <<<"$out" | tr '\n' ' ')"
  fi
else
  skip terraform-fmt "terraform is not on PATH (Debian does not package it)"
  skip terraform-validate "terraform is not on PATH (Debian does not package it)"
fi

if ! command -v node >/dev/null || [ ! -d "$HCL2JSON_MODULES/@cdktf/hcl2json" ]; then
  skip terraform-hcl-parse "no node or no $HCL2JSON_MODULES/@cdktf/hcl2json: run scripts/install-deps.sh"
else
  hcl2json() { NODE_PATH=$HCL2JSON_MODULES node "$TESTS_DIR/lib/hcl2json.js" "$@"; }
  if hcl2json "$EX"/terraform/*.tf > "$T/tf.json" 2> "$T/tf.err"; then
    check terraform-structure examples terraform "$T/tf.json"
  else
    fail terraform-hcl-parse "$(head -3 "$T/tf.err" | tr '\n' ' ')"
  fi
  # The parser is a real one: an unclosed block is an error ...
  head -n -1 "$EX/terraform/main.tf" > "$T/unclosed.tf"
  if ! hcl2json "$T/unclosed.tf" >/dev/null 2>&1; then ok hcl-parser-rejects-unclosed-block
  else fail hcl-parser-rejects-unclosed-block "main.tf without its last line parsed"; fi
  # ... and the structure check misses a node pool without image streaming.
  sed '/gcfs_config {/,/}/d' "$EX/terraform/main.tf" > "$T/nogcfs.tf"
  if hcl2json "$T/nogcfs.tf" > "$T/nogcfs.json" 2>/dev/null && ! examples terraform "$T/nogcfs.json" >/dev/null; then
    ok terraform-check-rejects-missing-gcfs
  else
    fail terraform-check-rejects-missing-gcfs "a node pool without gcfs_config passed (or did not parse)"
  fi
fi

# --- sbdisk command lines use options sbdisk has ----------------------------

help=$("$SBDISK" build --help 2>&1)
known=" $(grep -o -- '--[a-z][a-z0-9-]*' <<<"$help" | sort -u | tr '\n' ' ') "
examples sbdisk-options "$EX" > "$T/uses.txt"
for kind in terraform/main.tf cloudbuild/cloudbuild.yaml github-actions/build-disk.yml; do
  if grep -q "^$kind:" "$T/uses.txt"; then ok "sbdisk-command-found-$(dirname "$kind")"
  else fail "sbdisk-command-found-$(dirname "$kind")" "no sbdisk build command line found in $kind"; fi
done
unknown=() pending=()
while read -r where opt; do
  [ "$opt" = - ] && continue
  if [[ $known == *" $opt "* ]]; then continue
  elif [[ $NEW_OPTIONS == *" $opt "* ]]; then pending+=("$opt")
  else unknown+=("$where $opt"); fi
done < "$T/uses.txt"
if [ "${#unknown[@]}" -eq 0 ]; then ok sbdisk-options-known
else fail sbdisk-options-known "not in sbdisk build --help: ${unknown[*]}"; fi
for opt in $(printf '%s\n' "${pending[@]}" | sort -u); do
  skip "sbdisk-option$opt" "the examples use $opt, which sbdisk build --help does not list yet"
done

# --- the JSON the examples read ----------------------------------------------

demo=oci:$EX/demo-image:1.0
if [[ $known != *" --json "* || $known != *" --gce-tar "* ]]; then
  skip json-flat-for-terraform "sbdisk build has no --json/--gce-tar yet"
  skip json-fields-for-pipelines "sbdisk build has no --json/--gce-tar yet"
else
  # Terraform's external data source: a JSON query on stdin, one flat object
  # of strings on stdout, and the same digest every plan.
  flat() {
    mkdir -p "$T/$1"
    echo '{"query":"from terraform"}' | env SOURCE_DATE_EPOCH=1704067200 "$SBDISK" build --json=flat \
      --cache-dir "$T/cache" --output "$T/$1/disk.raw" --gce-tar "$T/$1/disk.tar.gz" "$demo" > "$T/$1.json"
  }
  if flat plan1 2> "$T/flat.err" && flat plan2 2>> "$T/flat.err"; then
    want=$(grep -ho 'local\.disk\.[a-z0-9_]*\|data\.external\.disk\.result\.[a-z0-9_]*' "$EX"/terraform/*.tf |
      sed 's/.*\.//' | sort -u | tr '\n' ' ')
    # shellcheck disable=SC2086 # $want splits into one field name per argument
    if out=$(python3 - "$T/plan1.json" "$T/plan2.json" $want 2>&1 <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
assert isinstance(a, dict) and all(isinstance(v, str) for v in a.values()), f"not a flat object of strings: {a}"
missing = [k for k in sys.argv[3:] if k not in a]
assert not missing, f"main.tf reads {missing}, absent from {sorted(a)}"
assert a["sha256"] == b["sha256"], f"two builds differ: {a['sha256']} {b['sha256']}: every plan would replace the image"
PY
    ); then ok json-flat-for-terraform; else fail json-flat-for-terraform "$(tail -1 <<<"$out")"; fi
  else
    fail json-flat-for-terraform "$(tail -3 "$T/flat.err" | tr '\n' ' ')"
  fi

  # The pipelines read the full --json with jq: every path they use is there.
  if "$SBDISK" build --json --cache-dir "$T/cache" --output "$T/full.raw" --gce-tar "$T/full.tar.gz" \
      "$demo" > "$T/full.json" 2> "$T/full.err"; then
    bad=()
    while read -r path; do
      jq -e "$path" "$T/full.json" >/dev/null 2>&1 || bad+=("$path")
    done < <(grep -ho "jq -r '\?\.[a-z_][a-z0-9_.]*\(\[\]\)\?" "$EX"/cloudbuild/*.yaml "$EX"/github-actions/*.yml |
      sed "s/^jq -r '\?//" | sort -u)
    if [ "${#bad[@]}" -eq 0 ]; then ok json-fields-for-pipelines
    else fail json-fields-for-pipelines "absent from sbdisk build --json: ${bad[*]}"; fi
  else
    fail json-fields-for-pipelines "$(tail -3 "$T/full.err" | tr '\n' ' ')"
  fi
fi
