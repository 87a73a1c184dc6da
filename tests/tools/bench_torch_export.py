#!/usr/bin/python3
"""PyTorch side of the export benchmark (README, "Export speed"): the same job as

    attnstudio-cli export /tmp/bench-bert --plan int8.json --format compressed --out DIR

on the same BERT-base-sized checkpoint (tests/tools/make_bench_model.py): read
model.safetensors (numpy, memory-mapped), quantize every Linear weight of the six groups
int8 symmetric per output channel (torch.quantize_per_channel, scale max|w_r|/127, as our
uniform:8:channel), dequantize it and compute MSE / SQNR per tensor, run the original and
the dequantized model's forward pass on a short input (a BERT encoder written with torch
ops, no transformers), and write codes + scales + every other tensor with torch.save into a
temporary file that is fsynced and renamed. Time it with /usr/bin/time:

    /usr/bin/time -f "%e s %M KB" /usr/bin/python3 tests/tools/bench_torch_export.py MODEL OUT
"""
import json
import warnings
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
model, out = sys.argv[1], sys.argv[2]
torch.set_num_threads(2)
cfg = json.load(open(os.path.join(model, "config.json")))
path = os.path.join(model, "model.safetensors")
with open(path, "rb") as f:
    (n,) = struct.unpack("<Q", f.read(8))
    header = json.loads(f.read(n))
header.pop("__metadata__", None)
data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n)
W = {}
for name, info in header.items():
    b, e = info["data_offsets"]
    dt = {"F32": np.float32, "I64": np.int64}[info["dtype"]]
    W[name] = torch.from_numpy(np.frombuffer(data[b:e], dtype=dt).reshape(info["shape"]))

L, D, H = cfg["num_hidden_layers"], cfg["hidden_size"], cfg["num_attention_heads"]
eps = cfg["layer_norm_eps"]
linears = [f"encoder.layer.{l}.{t}.weight" for l in range(L) for t in (
    "attention.self.query", "attention.self.key", "attention.self.value",
    "attention.output.dense", "intermediate.dense", "output.dense")]
linears = [p + n for n in linears for p in ("", "bert.") if p + n in W]


def forward(W, ids):
    S = ids.shape[0]
    p = "bert." if "bert.embeddings.word_embeddings.weight" in W else ""
    ln = lambda x, n: F.layer_norm(x, (D,), W[n + ".weight"], W[n + ".bias"], eps)
    lin = lambda x, n: x @ W[n + ".weight"].T + W[n + ".bias"]
    x = (W[p + "embeddings.word_embeddings.weight"][ids] + W[p + "embeddings.position_embeddings.weight"][:S]
         + W[p + "embeddings.token_type_embeddings.weight"][0])
    x = ln(x, p + "embeddings.LayerNorm")
    d = D // H
    atts = []
    for l in range(L):
        n = f"{p}encoder.layer.{l}."
        sp = lambda t: t.view(S, H, d).transpose(0, 1)
        q, k, v = (sp(lin(x, n + "attention.self." + t)) for t in ("query", "key", "value"))
        a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d), -1)
        atts.append(a)
        c = (a @ v).transpose(0, 1).reshape(S, D)
        y = ln(lin(c, n + "attention.output.dense") + x, n + "attention.output.LayerNorm")
        h = F.gelu(lin(y, n + "intermediate.dense"))
        x = ln(lin(h, n + "output.dense") + y, n + "output.LayerNorm")
    return atts, x


ids = torch.tensor([101, 1996, 4248, 2829, 4419, 14523, 2058, 1996, 13971, 3899, 1012, 102])
with torch.no_grad():
    ref_att, ref_h = forward(W, ids)
    Q = dict(W)
    saved = {}
    stats = {}
    for name in linears:
        w = W[name]
        scale = (w.abs().amax(dim=1) / 127.0).clamp(min=torch.finfo(torch.float32).eps)
        q = torch.quantize_per_channel(w, scale.double(), torch.zeros_like(scale, dtype=torch.long), 0, torch.qint8)
        r = q.dequantize()
        err = (w - r).double()
        stats[name] = (err.pow(2).mean().item(), 10 * math.log10(w.double().pow(2).sum().item() / err.pow(2).sum().item()))
        Q[name] = r
        saved[name + ".qweight"] = q.int_repr()
        saved[name + ".scales"] = scale
    got_att, got_h = forward(Q, ids)
    kl = sum(((a.clamp_min(1e-12)).log() - b.clamp_min(1e-12).log()).mul(a).sum(-1).mean().item()
             for a, b in zip(ref_att, got_att)) / L
for name, t in W.items():
    if name not in stats:
        saved[name] = t
tmp = out + ".tmp"
with open(tmp, "wb") as f:
    torch.save(saved, f)
    f.flush()
    os.fsync(f.fileno())
os.replace(tmp, out)
print(json.dumps({"tensors": len(stats), "attention_kl_mean": kl,
                  "min_sqnr_db": min(s for _, s in stats.values())}))
