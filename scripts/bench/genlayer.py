#!/usr/bin/env python3
"""Writes a deterministic layer tar (PAX, as buildkit writes them) to stdout,
for `make bench` (scripts/bench.sh).  The same arguments give the same bytes.

  genlayer.py files --seed S --count N [--flat K] --dirs D --min B --max B --root PATH
      N regular files of mixed text, B..B bytes each: K of them in one directory
      (ROOT/flat), the rest spread round-robin over D directories
      (ROOT/tree/gXX/dYYY).  Every directory is named in the tar before its
      files, as `tar --sort=name` of a real tree would.
  genlayer.py weights --bytes N --shards K --root PATH
      K files that together hold the N bytes read from stdin (e.g. an AES-CTR
      keystream: incompressible, but reproducible), plus a small config.json.
  genlayer.py stat < TAR
      prints "sha256:HEX TARBYTES ENTRIES FILEBYTES" of the tar on stdin: its
      diffID, its length, how many entries it has and its regular files' bytes.
"""
import hashlib
import argparse
import io
import random
import sys
import tarfile

MTIME = 1700000000  # fixed, so digests do not depend on the day


def tar_stream():
    # Streaming mode: nothing is buffered beyond a record; the layer is never
    # held in memory.
    return tarfile.open(fileobj=sys.stdout.buffer, mode="w|", format=tarfile.PAX_FORMAT)


def add_dir(tf, path, mtime=MTIME):
    ti = tarfile.TarInfo(path)
    ti.type = tarfile.DIRTYPE
    ti.mode = 0o755
    ti.mtime = mtime
    ti.uname = ti.gname = "root"
    tf.addfile(ti)


def add_file(tf, path, data, mode=0o644, mtime=MTIME):
    ti = tarfile.TarInfo(path)
    ti.size = len(data)
    ti.mode = mode
    ti.mtime = mtime
    ti.uname = ti.gname = "root"
    tf.addfile(ti, io.BytesIO(data))


WORDS_SEED = 7


def make_corpus(rnd, size):
    """About SIZE bytes of text that compresses like source code and prose do
    (gzip about 3:1): lines drawn from a few thousand made-up words, some as
    Python, some as prose, some as JSON."""
    letters = "etaoinshrdlcumwfgypbvkjxqz"
    weights = [12, 9, 8, 7, 7, 7, 6, 6, 6, 4, 4, 3, 3, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1]
    words = ["".join(rnd.choices(letters, weights, k=rnd.randint(2, 10))) for _ in range(4000)]
    out = []
    n = 0
    while n < size:
        kind = rnd.random()
        w = rnd.choices(words, k=rnd.randint(3, 12))
        if kind < 0.45:
            ind = " " * (4 * rnd.randint(0, 3))
            if rnd.random() < 0.3:
                line = f"{ind}def {w[0]}_{w[1]}({', '.join(w[2:5])}):"
            else:
                line = f"{ind}{w[0]} = {w[1]}.{w[2]}({', '.join(w[3:])})"
        elif kind < 0.8:
            line = " ".join(w).capitalize() + "."
        else:
            line = "{" + ", ".join(f'"{a}": {rnd.randint(0, 99999)}' for a in w[:5]) + "},"
        out.append(line)
        n += len(line) + 1
    return ("\n".join(out) + "\n").encode()


def cmd_files(a):
    rnd = random.Random(a.seed)
    corpus = make_corpus(random.Random(WORDS_SEED), 4 << 20)
    exts = [".py", ".py", ".py", ".txt", ".json", ".md", ".pyi", ".cfg"]
    tf = tar_stream()
    root = a.root.strip("/")
    parts = root.split("/")
    for i in range(1, len(parts) + 1):
        add_dir(tf, "/".join(parts[:i]))

    def body(path):
        size = rnd.randint(a.min, a.max)
        head = f"# {path}\n".encode()
        size = max(size, len(head))
        off = rnd.randrange(0, len(corpus) - size)
        return head + corpus[off:off + size - len(head)]

    if a.flat:
        d = f"{root}/flat"
        add_dir(tf, d)
        for i in range(a.flat):
            name = f"{d}/item_{i:07d}{exts[i % len(exts)]}"
            add_file(tf, name, body(name))
    rest = a.count - a.flat
    if rest > 0 and a.dirs > 0:
        groups = max(1, int(a.dirs ** 0.5))
        dirs = [f"{root}/tree/g{g:02d}" for g in range(groups)]
        leaves = [f"{dirs[i % groups]}/d{i:04d}" for i in range(a.dirs)]
        per = [rest // a.dirs + (1 if i < rest % a.dirs else 0) for i in range(a.dirs)]
        add_dir(tf, f"{root}/tree")
        k = 0
        for g in range(groups):
            add_dir(tf, dirs[g])
            for i in range(g, a.dirs, groups):
                add_dir(tf, leaves[i])
                for j in range(per[i]):
                    name = f"{leaves[i]}/mod_{k:07d}{exts[k % len(exts)]}"
                    mode = 0o755 if k % 50 == 0 else 0o644
                    add_file(tf, name, body(name), mode=mode)
                    k += 1
    tf.close()


def cmd_weights(a):
    tf = tar_stream()
    root = a.root.strip("/")
    parts = root.split("/")
    for i in range(1, len(parts) + 1):
        add_dir(tf, "/".join(parts[:i]))
    cfg = (b'{"architectures": ["BenchForCausalLM"], "hidden_size": 4096, '
           b'"num_hidden_layers": 32, "torch_dtype": "bfloat16"}\n')
    add_file(tf, f"{root}/config.json", cfg)
    src = sys.stdin.buffer
    per = a.bytes // a.shards
    for s in range(a.shards):
        size = per if s < a.shards - 1 else a.bytes - per * (a.shards - 1)
        ti = tarfile.TarInfo(f"{root}/model-{s + 1:05d}-of-{a.shards:05d}.safetensors")
        ti.size = size
        ti.mode = 0o644
        ti.mtime = MTIME
        ti.uname = ti.gname = "root"
        tf.addfile(ti, src)  # reads exactly `size` bytes, or fails on a short stream
    tf.close()


class HashingReader:
    def __init__(self, f):
        self.f, self.h, self.n = f, hashlib.sha256(), 0

    def read(self, n=-1):
        b = self.f.read(n)
        self.h.update(b)
        self.n += len(b)
        return b


def cmd_stat(_):
    r = HashingReader(sys.stdin.buffer)
    entries = filebytes = 0
    with tarfile.open(fileobj=r, mode="r|") as tf:
        for ti in tf:
            entries += 1
            if ti.isreg():
                filebytes += ti.size
    while r.read(1 << 20):  # the end-of-archive blocks tarfile stops before
        pass
    print(f"sha256:{r.h.hexdigest()} {r.n} {entries} {filebytes}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("files")
    f.add_argument("--seed", type=int, required=True)
    f.add_argument("--count", type=int, required=True)
    f.add_argument("--flat", type=int, default=0)
    f.add_argument("--dirs", type=int, required=True)
    f.add_argument("--min", type=int, required=True)
    f.add_argument("--max", type=int, required=True)
    f.add_argument("--root", required=True)
    w = sub.add_parser("weights")
    w.add_argument("--bytes", type=int, required=True)
    w.add_argument("--shards", type=int, default=4)
    w.add_argument("--root", required=True)
    sub.add_parser("stat")
    a = p.parse_args()
    if a.cmd == "stat":
        cmd_stat(a)
    elif a.cmd == "files":
        if a.flat > a.count or a.min < 1 or a.max < a.min:
            p.error("need 0 <= --flat <= --count and 1 <= --min <= --max")
        cmd_files(a)
    else:
        cmd_weights(a)


if __name__ == "__main__":
    main()
