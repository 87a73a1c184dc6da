#!/usr/bin/python3
"""Attention of a BERT checkpoint with pruned heads, computed the way transformers runs it.

transformers' BertSelfAttention after prune_heads: num_attention_heads shrinks to the
kept heads, attention_head_size stays hidden_size / num_attention_heads (of config.json),
query/key/value have kept*head_size output rows in the original order, the output dense
layer kept*head_size input columns; config.json "pruned_heads" lists the removed ones.
This script follows that (torch, float64) and prints, per layer, the attention maps of
the kept heads in order, as JSON: {"layers": [[[[p, …], …], …], …]} ([layer][head][q][k]).

Usage: /usr/bin/python3 tests/tools/pruned_heads_reference.py MODEL_DIR ID ID …
"""
import json
import math
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F


def read_safetensors(path):
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    out = {}
    for name, info in header.items():
        assert info["dtype"] in ("F32", "I64"), info["dtype"]
        b, e = info["data_offsets"]
        dt = "<f4" if info["dtype"] == "F32" else "<i8"
        out[name] = torch.from_numpy(np.frombuffer(data[8 + n + b:8 + n + e], dtype=dt).copy()
                                     .reshape(info["shape"])).double()
    return out


def main():
    model, ids = sys.argv[1], torch.tensor([int(x) for x in sys.argv[2:]])
    cfg = json.load(open(model + "/config.json"))
    W = read_safetensors(model + "/model.safetensors")
    p = "bert." if "bert.embeddings.word_embeddings.weight" in W else ""
    D, L = cfg["hidden_size"], cfg["num_hidden_layers"]
    d = D // cfg["num_attention_heads"]  # attention_head_size is not changed by pruning
    eps = cfg["layer_norm_eps"]
    S = ids.shape[0]

    def lin(x, name):
        return x @ W[name + ".weight"].T + W[name + ".bias"]

    def ln(x, name):
        return F.layer_norm(x, (x.shape[-1],), W[name + ".weight"], W[name + ".bias"], eps)

    x = (W[p + "embeddings.word_embeddings.weight"][ids]
         + W[p + "embeddings.token_type_embeddings.weight"][torch.zeros(S, dtype=torch.long)]
         + W[p + "embeddings.position_embeddings.weight"][torch.arange(S)])
    x = ln(x, p + "embeddings.LayerNorm")
    layers = []
    for l in range(L):
        n = f"{p}encoder.layer.{l}."
        H = W[n + "attention.self.query.weight"].shape[0] // d  # the kept heads
        split = lambda t: t.view(S, H, d).transpose(0, 1)
        q, k, v = (split(lin(x, n + "attention.self." + t)) for t in ("query", "key", "value"))
        pr = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d), dim=-1)
        ctx = (pr @ v).transpose(0, 1).reshape(S, H * d)
        a = ln(lin(ctx, n + "attention.output.dense") + x, n + "attention.output.LayerNorm")
        h = lin(a, n + "intermediate.dense")
        h = 0.5 * h * (1.0 + torch.erf(h / math.sqrt(2.0)))
        x = ln(lin(h, n + "output.dense") + a, n + "output.LayerNorm")
        layers.append(pr.tolist())
    print(json.dumps({"layers": layers}))


main()
