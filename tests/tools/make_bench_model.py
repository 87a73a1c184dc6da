#!/usr/bin/env python3
"""Writes a BERT-base-sized checkpoint (12 x 768, 12 heads, FFN 3072, vocab 30522,
float32, random N(0, 0.02) weights) as a Hugging Face directory, for measuring
`attnstudio-cli bench MODEL` on a real file (speed and peak memory).

  /usr/bin/python3 tests/tools/make_bench_model.py /tmp/bert-base-random
"""
import json
import struct
import sys
from pathlib import Path

import numpy as np


def main():
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/bert-base-random")
    out.mkdir(parents=True, exist_ok=True)
    L, D, H, F, V, P = 12, 768, 12, 3072, 30522, 512
    rng = np.random.default_rng(0)
    shapes = {"embeddings.word_embeddings.weight": (V, D),
              "embeddings.position_embeddings.weight": (P, D),
              "embeddings.token_type_embeddings.weight": (2, D),
              "embeddings.LayerNorm.weight": (D,), "embeddings.LayerNorm.bias": (D,)}
    for l in range(L):
        p = f"encoder.layer.{l}."
        for n in ("attention.self.query", "attention.self.key", "attention.self.value",
                  "attention.output.dense"):
            shapes[p + n + ".weight"] = (D, D)
            shapes[p + n + ".bias"] = (D,)
        shapes[p + "intermediate.dense.weight"] = (F, D)
        shapes[p + "intermediate.dense.bias"] = (F,)
        shapes[p + "output.dense.weight"] = (D, F)
        shapes[p + "output.dense.bias"] = (D,)
        for n in ("attention.output.LayerNorm", "output.LayerNorm"):
            shapes[p + n + ".weight"] = (D,)
            shapes[p + n + ".bias"] = (D,)
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, shape in shapes.items():
        n = int(np.prod(shape)) * 4
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    text = json.dumps(header).encode()
    text += b" " * ((8 - (8 + len(text)) % 8) % 8)
    with open(out / "model.safetensors", "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for name, shape in shapes.items():
            if name.endswith("LayerNorm.weight"):
                a = np.ones(shape, np.float32)
            else:
                a = (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(np.float32)
            f.write(a.tobytes())
    (out / "config.json").write_text(json.dumps({
        "architectures": ["BertModel"], "model_type": "bert", "hidden_size": D,
        "num_hidden_layers": L, "num_attention_heads": H, "intermediate_size": F,
        "vocab_size": V, "max_position_embeddings": P, "type_vocab_size": 2,
        "layer_norm_eps": 1e-12, "hidden_act": "gelu", "pad_token_id": 0}, indent=2))
    print(out, offset + 8 + len(text), "bytes")


if __name__ == "__main__":
    main()
