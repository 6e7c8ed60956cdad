#!/usr/bin/env python3
"""scripts/shard_model.py SRC DST [--max-mib 16] [--bf16-matrices] — a model folder whose
model.safetensors is split into shards of at most --max-mib MiB each
(model-0000k-of-0000n.safetensors and model.safetensors.index.json, as transformers'
save_pretrained writes them; one model.safetensors when it fits one), with its config.json
and tokenizer.json beside them. The tensors keep their order and bytes; with
--bf16-matrices the float32 weights of the matrix products (the embedding, the
projections, the LM head) are rounded to bfloat16 (to nearest, ties to even), the small
vectors (A_log, D, biases, norms, conv taps) stay float32. Used to ship models/default,
whose files must each stay under 16 MiB. DST must not exist; it appears whole (written into
a temporary folder, then renamed). Dev tool: standard library only.
"""
import argparse
import array
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


MATRIX_SUFFIXES = ("proj.weight", "embeddings.weight", "embedding.weight", "lm_head.weight")


def to_bf16(raw):
    """float32 bytes -> bfloat16 bytes, rounded to nearest, ties to even (no NaNs in weights)."""
    u = array.array("I", raw)
    if sys.byteorder != "little":
        u.byteswap()
    h = array.array("H", [((v + 0x7FFF + ((v >> 16) & 1)) >> 16) & 0xFFFF for v in u])
    if sys.byteorder != "little":
        h.byteswap()
    return h.tobytes()


def converted(name, info, bf16_matrices):
    return bf16_matrices and info["dtype"] == "F32" and name.endswith(MATRIX_SUFFIXES)


def out_bytes(name, info, bf16_matrices):
    a, b = info["data_offsets"]
    return (b - a) // 2 if converted(name, info, bf16_matrices) else b - a


def write_shard(path, src, base, names, head, bf16_matrices):
    out, off = {}, 0
    for name in names:
        n = out_bytes(name, head[name], bf16_matrices)
        dtype = "BF16" if converted(name, head[name], bf16_matrices) else head[name]["dtype"]
        out[name] = {"dtype": dtype, "shape": head[name]["shape"], "data_offsets": [off, off + n]}
        off += n
    out["__metadata__"] = {"format": "pt"}
    text = json.dumps(out, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        for name in names:
            a, b = head[name]["data_offsets"]
            src.seek(base + a)
            raw = src.read(b - a)
            f.write(to_bf16(raw) if converted(name, head[name], bf16_matrices) else raw)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--max-mib", type=float, default=16.0)
    ap.add_argument("--bf16-matrices", action="store_true")
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
        n = out_bytes(name, head[name], args.bf16_matrices)
        if n > limit:
            sys.exit(f"{name}: {n} bytes, over the shard size")
        if cur and size + n > limit:
            shards.append(cur)
            cur, size = [], 0
        cur.append(name)
        size += n
    shards.append(cur)
    parent = os.path.dirname(os.path.abspath(args.dst))
    tmp = tempfile.mkdtemp(prefix=".shard-", dir=parent)
    try:
        weight_map, total = {}, 0
        with open(st, "rb") as src:
            for i, group in enumerate(shards):
                fname = "model.safetensors"
                if len(shards) > 1:
                    fname = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
                write_shard(os.path.join(tmp, fname), src, base, group, head, args.bf16_matrices)
                for name in group:
                    weight_map[name] = fname
                    total += out_bytes(name, head[name], args.bf16_matrices)
        if len(shards) > 1:
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
    print(f"{args.dst}: {len(shards)} file(s), {total} bytes of tensors")


if __name__ == "__main__":
    main()
