#!/usr/bin/python3
"""Reference codes and scales from PyTorch's own quantizers, for tests/core/test_quant.cpp.

Run with the system interpreter (Debian's python3-torch):

    /usr/bin/python3 tests/tools/make_quant_fixtures.py

Writes tests/data/quant/*.npy (seeded; rerunning rewrites the same bytes):
  weights.npy                 float32 [24, 64]: N(0, 0.05) with outliers and near-tie values
  <case>_codes.npy            int32 codes as torch's int_repr() gives them
  <case>_scales.npy           float32 scales (one per tensor, or per output row)
  <case>_zeros.npy            int32 zero points
for the cases
  qint8_tensor     torch.quantize_per_tensor(w, max|w|/127, 0, qint8)
  qint8_channel    torch.quantize_per_channel(w, max|w_r|/127, 0, axis 0, qint8)
  quint8_tensor    MinMaxObserver(quint8, per_tensor_affine) + quantize_per_tensor
  quint8_channel   PerChannelMinMaxObserver(axis 0, quint8, per_channel_affine) + quantize_per_channel
The scales are computed in float32 tensors exactly as written above; PyTorch then takes the
float32 reciprocal and rounds half to even.

Model-level references (float64 forward passes of make_fixtures.py on weights that PyTorch
quantized and dequantized, per output channel, int8 symmetric with scale max|w_r|/127):
  bert_tiny_int8_attentions.npy  [L, H, S, S]  every Linear weight and the embeddings
  bert_tiny_int8_hidden.npy      [L+1, S, D]
  gpt2_tiny_int8_attentions.npy  [L, H, S, S]  every Linear weight (Conv1D as [out, in])
  gpt2_tiny_int8_hidden.npy      [L+1, S, D]
on the fixtures' "plain" inputs (tests/data/models/<name>/reference/plain_ids.npy).
"""

import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_fixtures as mf  # noqa: E402  (reference forward passes and safetensors reader)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "quant")


def save(name, array):
    np.save(os.path.join(OUT, name + ".npy"), array)


def main():
    torch.manual_seed(1234)
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    w = torch.randn(24, 64, dtype=torch.float32) * 0.05
    w[3, 5] = 0.9   # outliers
    w[7, 60] = -1.3
    w[10] = torch.abs(w[10])  # an all-positive row (affine zero point 0)
    w[11] = -torch.abs(w[11])  # an all-negative row (affine zero point 255)
    # Near-ties: values at (k + 1/2) steps of the row's symmetric int8 grid.
    s = (w[5].abs().max() / 127).item()
    for j, k in enumerate(range(-6, 6)):
        w[5, 40 + j] = (k + 0.5) * s
    save("weights", w.numpy())

    amax = w.abs().max()
    scale = (amax / 127).to(torch.float32)
    q = torch.quantize_per_tensor(w, scale.item(), 0, torch.qint8)
    save("qint8_tensor_codes", q.int_repr().numpy().astype(np.int32))
    save("qint8_tensor_scales", np.array([scale.item()], dtype=np.float32))
    save("qint8_tensor_zeros", np.array([0], dtype=np.int32))

    scales = (w.abs().amax(dim=1) / 127).to(torch.float32)
    zeros = torch.zeros(24, dtype=torch.int64)
    q = torch.quantize_per_channel(w, scales.double(), zeros, 0, torch.qint8)
    save("qint8_channel_codes", q.int_repr().numpy().astype(np.int32))
    save("qint8_channel_scales", scales.numpy())
    save("qint8_channel_zeros", zeros.numpy().astype(np.int32))

    obs = torch.ao.quantization.MinMaxObserver(dtype=torch.quint8, qscheme=torch.per_tensor_affine)
    obs(w)
    sc, zp = obs.calculate_qparams()
    q = torch.quantize_per_tensor(w, float(sc.item()), int(zp.item()), torch.quint8)
    save("quint8_tensor_codes", q.int_repr().numpy().astype(np.int32))
    save("quint8_tensor_scales", sc.to(torch.float32).numpy().reshape(1))
    save("quint8_tensor_zeros", zp.numpy().astype(np.int32).reshape(1))

    obs = torch.ao.quantization.PerChannelMinMaxObserver(
        ch_axis=0, dtype=torch.quint8, qscheme=torch.per_channel_affine)
    obs(w)
    sc, zp = obs.calculate_qparams()
    q = torch.quantize_per_channel(w, sc.double(), zp, 0, torch.quint8)
    save("quint8_channel_codes", q.int_repr().numpy().astype(np.int32))
    save("quint8_channel_scales", sc.to(torch.float32).numpy())
    save("quint8_channel_zeros", zp.numpy().astype(np.int32))

    # Self-check: the dequantized values are scale · (code − zero) exactly.
    deq = q.dequantize().numpy()
    ref = (sc.numpy()[:, None].astype(np.float32) *
           (q.int_repr().numpy().astype(np.float32) - zp.numpy()[:, None].astype(np.float32)))
    assert np.array_equal(deq, ref.astype(np.float32)), "dequantize formula"
    model_references()
    print("wrote", sorted(os.listdir(OUT)))


def int8_per_channel(w):
    """torch.quantize_per_channel int8 symmetric, scale max|w_r|/127, then dequantize."""
    scales = (w.abs().amax(dim=1) / 127).to(torch.float32)
    q = torch.quantize_per_channel(w, scales.double(), torch.zeros(w.shape[0], dtype=torch.int64),
                                   0, torch.qint8)
    return q.dequantize()


def model_references():
    models = os.path.join(OUT, "..", "models")
    linear = {"bert_tiny": ["attention.self.query", "attention.self.key", "attention.self.value",
                            "attention.output.dense", "intermediate.dense", "output.dense"],
              "gpt2_tiny": ["attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"]}
    for name, forward in (("bert_tiny", mf.bert_forward), ("gpt2_tiny", mf.gpt2_forward)):
        d = os.path.join(models, name)
        cfg = json.load(open(os.path.join(d, "config.json")))
        _, got = mf.read_safetensors(os.path.join(d, "model.safetensors"))
        W = {k: torch.from_numpy(np.array(v, dtype=np.float32)) if v.dtype != bool else None
             for k, (_, v) in got.items()}
        for k in list(W):
            is_linear = k.endswith(".weight") and any("." + n + ".weight" in k for n in linear[name])
            is_emb = name == "bert_tiny" and k.startswith("embeddings.") and k.endswith("embeddings.weight")
            if is_linear and name == "gpt2_tiny":  # Conv1D [in, out]: quantize as [out, in]
                W[k] = int8_per_channel(W[k].T.contiguous()).T.contiguous()
            elif is_linear or is_emb:
                W[k] = int8_per_channel(W[k])
        W64 = {k: v.double() for k, v in W.items() if v is not None}
        ids = torch.from_numpy(np.load(os.path.join(d, "reference", "plain_ids.npy")).astype(np.int64))
        prefix = "transformer." if "transformer.wte.weight" in W64 else ""
        att, _, hid = forward(W64, cfg, ids, torch.ones_like(ids), prefix=prefix)
        save(name + "_int8_attentions", att.numpy().astype(np.float64))
        save(name + "_int8_hidden", hid.numpy().astype(np.float64))


if __name__ == "__main__":
    main()
