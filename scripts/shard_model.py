#!/usr/bin/env python3
"""scripts/shard_model.py SRC DST [--max-mib 16] — a model folder whose model.safetensors is
split into shards of at most --max-mib MiB each (model-0000k-of-0000n.safetensors and
model.safetensors.index.json, as transformers' save_pretrained writes them), with its
config.json and tokenizer.json beside them. The tensors keep their order, dtype and bytes.
Used to ship models/default, whose files must each stay under 16 MiB. DST must not exist; it
appears whole (written into a temporary folder, then renamed). Dev tool: standard library only.
"""
import argparse
import json
import os
import shutil
import struct
import sys
import tempfile


def read_header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        if n > 100 << 20:
            sys.exit(f"{path}: header of {n} bytes is not plausible")
        head = json.loads(f.read(n))
    return head, 8 + n


def write_shard(path, src, base, names, head):
    out, off = {}, 0
    for name in names:
        a, b = head[name]["data_offsets"]
        out[name] = {"dtype": head[name]["dtype"], "shape": head[name]["shape"], "data_offsets": [off, off + b - a]}
        off += b - a
    out["__metadata__"] = {"format": "pt"}
    text = json.dumps(out, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        for name in names:
            a, b = head[name]["data_offsets"]
            src.seek(base + a)
            f.write(src.read(b - a))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--max-mib", type=float, default=16.0)
    args = ap.parse_args()
    if os.path.exists(args.dst):
        sys.exit(f"{args.dst}: exists")
    st = os.path.join(args.src, "model.safetensors")
    head, base = read_header(st)
    head.pop("__metadata__", None)
    names = sorted(head, key=lambda k: head[k]["data_offsets"][0])
    limit = int(args.max_mib * (1 << 20)) - (1 << 16)  # room for each shard's header
    shards, cur, size = [], [], 0
    for name in names:
        a, b = head[name]["data_offsets"]
        if b - a > limit:
            sys.exit(f"{name}: {b - a} bytes, over the shard size")
        if cur and size + b - a > limit:
            shards.append(cur)
            cur, size = [], 0
        cur.append(name)
        size += b - a
    shards.append(cur)
    parent = os.path.dirname(os.path.abspath(args.dst))
    tmp = tempfile.mkdtemp(prefix=".shard-", dir=parent)
    try:
        weight_map, total = {}, 0
        with open(st, "rb") as src:
            for i, group in enumerate(shards):
                fname = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
                write_shard(os.path.join(tmp, fname), src, base, group, head)
                for name in group:
                    weight_map[name] = fname
                    a, b = head[name]["data_offsets"]
                    total += b - a
        with open(os.path.join(tmp, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
            f.write("\n")
        for extra in ("config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json"):
            if os.path.exists(os.path.join(args.src, extra)):
                shutil.copyfile(os.path.join(args.src, extra), os.path.join(tmp, extra))
        os.chmod(tmp, 0o755)
        os.rename(tmp, args.dst)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    print(f"{args.dst}: {len(shards)} shards, {total} bytes of tensors")


if __name__ == "__main__":
    main()
