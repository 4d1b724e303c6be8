#!/usr/bin/env python3
"""Checks for examples/: each subcommand checks one file (or the sbdisk
command lines of all of them) for what its consumer needs, prints nothing and
exits 0 when it holds, else prints why and exits 1.  Used by t_examples.sh."""
import json
import os
import re
import sys

import yaml

# A GCE image name as GKE takes it for a secondary boot disk: RFC 1035, and at
# most 39 characters, because GKE makes it part of a node label key whose name
# part ("gke-secondary-boot-disk-" + NAME) holds 63.
IMAGE_NAME = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
IMAGE_NAME_MAX = 39
LABEL_PREFIX = "cloud.google.com.node-restriction.kubernetes.io/"
LABEL_NAME_PREFIX = "gke-secondary-boot-disk-"
# A project ID: 6 to 30 lowercase letters, digits and dashes, a letter first.
PROJECT_ID = re.compile(r"[a-z][-a-z0-9]{4,28}[a-z0-9]")


class Bad(Exception):
    pass


def need(cond, why):
    if not cond:
        raise Bad(why)


def load_yaml(path):
    with open(path) as f:
        return yaml.safe_load(f)


def check_yaml_parse(paths):
    for p in paths:
        try:
            doc = load_yaml(p)
        except yaml.YAMLError as e:
            raise Bad(f"{p}: {e}")
        need(isinstance(doc, dict), f"{p}: the document is not a mapping")


def check_cloudbuild(path):
    doc = load_yaml(path)
    steps = doc.get("steps")
    need(isinstance(steps, list) and steps, "no steps")
    defined = set(doc.get("substitutions") or {})
    for k in defined:
        need(k.startswith("_"), f"user substitution {k} must start with _")
    uses_script = False
    for i, s in enumerate(steps):
        need(isinstance(s, dict) and isinstance(s.get("name"), str) and s["name"],
             f"step {i} has no name (the image it runs)")
        need(("script" in s) != ("args" in s or "entrypoint" in s),
             f"step {i} needs script, or args/entrypoint, not both")
        text = s.get("script", "") + " ".join(s.get("args", []))
        uses_script |= "script" in s
        # Every $_NAME a step uses must be a declared substitution.
        for name in re.findall(r"\$\{?(_[A-Z0-9_]+)", text):
            need(name in defined, f"step {i} uses ${name}, which substitutions does not define")
    if uses_script and defined:
        # Scripts see substitutions only as environment variables.
        need((doc.get("options") or {}).get("automapSubstitutions") is True,
             "scripts use substitutions but options.automapSubstitutions is not true")


def check_actions(path):
    doc = load_yaml(path)
    # YAML 1.1 (PyYAML) reads the key `on` as the boolean true.
    on = doc.get("on", doc.get(True))
    need(isinstance(on, dict), "no `on` triggers")
    need("workflow_dispatch" in on, "not runnable by hand: no workflow_dispatch")
    push = on.get("push") or {}
    need("images.txt" in (push.get("paths") or []), "push does not watch images.txt")
    need((doc.get("permissions") or {}).get("id-token") == "write",
         "Workload Identity Federation needs permissions.id-token: write")
    jobs = doc.get("jobs")
    need(isinstance(jobs, dict) and jobs, "no jobs")
    uses = []
    for name, job in jobs.items():
        need("runs-on" in job, f"job {name} has no runs-on")
        steps = job.get("steps")
        need(isinstance(steps, list) and steps, f"job {name} has no steps")
        for i, s in enumerate(steps):
            need(("uses" in s) != ("run" in s), f"job {name} step {i} needs exactly one of uses/run")
            uses.append(s.get("uses", "").split("@")[0])
    need("google-github-actions/auth" in uses, "no google-github-actions/auth step")


def check_pod(path):
    doc = load_yaml(path)
    need(doc.get("apiVersion") == "v1", "apiVersion is not v1")
    need(doc.get("kind") == "Pod", "kind is not Pod")
    spec = doc.get("spec") or {}
    containers = spec.get("containers")
    need(isinstance(containers, list) and containers and all(c.get("image") for c in containers),
         "no containers with an image")
    sel = spec.get("nodeSelector") or {}
    keys = [k for k in sel if k.startswith(LABEL_PREFIX + LABEL_NAME_PREFIX)]
    need(len(keys) == 1, f"want one nodeSelector key {LABEL_PREFIX}{LABEL_NAME_PREFIX}NAME, have {list(sel)}")
    key = keys[0]
    label_name = key[len(LABEL_PREFIX):]
    image = label_name[len(LABEL_NAME_PREFIX):]
    need(IMAGE_NAME.fullmatch(image), f"image name {image!r} is not a valid GCE image name")
    need(len(image) <= IMAGE_NAME_MAX, f"image name {image!r} is {len(image)} characters, over {IMAGE_NAME_MAX}")
    need(len(label_name) <= 63, f"label name {label_name!r} is over 63 characters")
    value = sel[key]
    need(isinstance(value, str) and value.startswith("CONTAINER_IMAGE_CACHE."),
         f"value {value!r} is not CONTAINER_IMAGE_CACHE.<PROJECT_ID>")
    project = value.split(".", 1)[1]
    need(PROJECT_ID.fullmatch(project), f"{project!r} is not a project ID")


def blocks(tree, kind, type_):
    """The bodies of every `kind "type_" "NAME" {...}` in hcl2json's output."""
    found = []
    for doc in tree.values():
        for name, bodies in ((doc.get(kind) or {}).get(type_) or {}).items():
            found += [(name, b) for b in bodies]
    return found


def one(items, what):
    need(len(items) == 1, f"want one {what}, have {len(items)}")
    return items[0]


def resolve_locals(tree, expr):
    """expr with each local.NAME replaced by that local's expression, once."""
    values = {}
    for doc in tree.values():
        for block in doc.get("locals") or []:
            values.update(block)
    return re.sub(r"local\.([a-z0-9_]+)", lambda m: str(values.get(m.group(1), m.group(0))), expr)


def check_terraform(json_path):
    """Structure of examples/terraform as hcl2json parsed it ({file: tree})."""
    with open(json_path) as f:
        tree = json.load(f)
    _, ext = one(blocks(tree, "data", "external"), 'data "external"')
    need("--json=flat" in ext.get("program", ""), "the external data source does not run --json=flat")
    _, td = one(blocks(tree, "resource", "terraform_data"), 'resource "terraform_data"')
    need("triggers_replace" in td, "terraform_data has no triggers_replace")
    need("var.images" in json.dumps(td["triggers_replace"]), "triggers_replace does not follow var.images")
    need((td.get("provisioner") or {}).get("local-exec"), "terraform_data has no local-exec provisioner")
    one(blocks(tree, "resource", "google_storage_bucket_object"), "google_storage_bucket_object")
    _, img = one(blocks(tree, "resource", "google_compute_image"), "google_compute_image")
    raw = (img.get("raw_disk") or [{}])[0]
    need(raw.get("source"), "google_compute_image has no raw_disk.source")
    need("sha256" in resolve_locals(tree, img.get("name", "")),
         "the image's name does not follow the disk's sha256: a changed disk would not make a new image")
    _, pool = one(blocks(tree, "resource", "google_container_node_pool"), "google_container_node_pool")
    nc = (pool.get("node_config") or [{}])[0]
    sbd = nc.get("secondary_boot_disks") or []
    need(sbd, "node_config has no secondary_boot_disks")
    need(all(d.get("mode") == "CONTAINER_IMAGE_CACHE" for d in sbd), "a secondary boot disk is not CONTAINER_IMAGE_CACHE")
    need(all("google_compute_image." in d.get("disk_image", "") for d in sbd),
         "disk_image does not come from the google_compute_image")
    gcfs = nc.get("gcfs_config") or []
    need(gcfs and gcfs[0].get("enabled") is True, "node_config.gcfs_config.enabled is not true")


# An sbdisk invocation: the program (sbdisk, build/sbdisk, "$SBDISK",
# var.sbdisk...) then `build`; its arguments run to the end of the command:
# a line end (unless continued by "\" or, in an HCL list, ","), "]", "|",
# ";", "&&" or ")".
SBDISK_BUILD = re.compile(r"""sbdisk["'}]?,?\s+["']?build\b["']?""", re.I)
COMMAND_END = re.compile(r"""(?<![\\,])\n|\]|\||;|&&|\)""")
LONG_OPTION = re.compile(r"(?<![\w-])--([a-z][a-z0-9-]*)")


def sbdisk_options(root):
    """{file: [(line, [long options])]} for every sbdisk build in root."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in ("demo-image", ".terraform"))
        for fn in sorted(filenames):
            if not fn.endswith((".tf", ".yaml", ".yml", ".md", ".sh")):
                continue
            path = os.path.join(dirpath, fn)
            with open(path) as f:
                text = f.read()
            for m in SBDISK_BUILD.finditer(text):
                end = COMMAND_END.search(text, m.end())
                args = text[m.end():end.start() if end else len(text)]
                line = text.count("\n", 0, m.start()) + 1
                found.setdefault(os.path.relpath(path, root), []).append(
                    (line, LONG_OPTION.findall(args)))
    return found


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    try:
        if cmd == "yaml-parse":
            check_yaml_parse(args)
        elif cmd == "cloudbuild":
            check_cloudbuild(args[0])
        elif cmd == "actions":
            check_actions(args[0])
        elif cmd == "pod":
            check_pod(args[0])
        elif cmd == "terraform":
            check_terraform(args[0])
        elif cmd == "sbdisk-options":
            # One line per use: FILE:LINE OPTION (or FILE:LINE - for none).
            for path, uses in sbdisk_options(args[0]).items():
                for line, opts in uses:
                    for o in opts or ["-"]:
                        print(f"{path}:{line} {o if o == '-' else '--' + o}")
        else:
            raise Bad(f"unknown check {cmd}")
    except Bad as e:
        print(e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
