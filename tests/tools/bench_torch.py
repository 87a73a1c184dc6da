#!/usr/bin/env python3
"""PyTorch side of the forward benchmark: a BERT-base-sized encoder (12 layers,
hidden 768, 12 heads, FFN 3072, batch 1) run the way transformers' eager
BertModel(output_attentions=True) runs it, timed like `attnstudio-cli bench`
(one warm-up, median of N runs on random token ids).

Run with Debian's interpreter and BLAS:
  OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 tests/tools/bench_torch.py --seq 128 --threads 2
"""
import argparse
import json
import math
import resource
import statistics
import time

import torch
import torch.nn.functional as F


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", default="bert-base", choices=["bert-base", "gpt2-small"])
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    L, D, H, Fd = 12, 768, 12, 3072
    V = 30522 if a.model == "bert-base" else 50257
    P = 512 if a.model == "bert-base" else 1024
    causal = a.model == "gpt2-small"
    dh = D // H
    rnd = lambda *s: torch.randn(*s) * 0.02
    wte, wpe = rnd(V, D), rnd(P, D)
    layers = [dict(q=rnd(D, D), k=rnd(D, D), v=rnd(D, D), o=rnd(D, D), i=rnd(Fd, D), out=rnd(D, Fd),
                   bq=rnd(D), bk=rnd(D), bv=rnd(D), bo=rnd(D), bi=rnd(Fd), bout=rnd(D),
                   g1=torch.ones(D), b1=torch.zeros(D), g2=torch.ones(D), b2=torch.zeros(D))
              for _ in range(L)]
    ids = torch.randint(0, V, (1, a.seq))
    mask = torch.ones(1, a.seq)
    ext = (1.0 - mask[:, None, None, :]) * torch.finfo(torch.float32).min
    if causal:
        tri = torch.tril(torch.ones(a.seq, a.seq, dtype=torch.bool))

    def split(x):  # [1, S, D] -> [1, H, S, dh]
        return x.view(1, a.seq, H, dh).permute(0, 2, 1, 3)

    def forward():
        x = wte[ids] + wpe[: a.seq][None]
        if not causal:
            x = F.layer_norm(x, (D,))
        atts = []
        for w in layers:
            h_in = F.layer_norm(x, (D,), w["g1"], w["b1"]) if causal else x
            q = split(F.linear(h_in, w["q"], w["bq"]))
            k = split(F.linear(h_in, w["k"], w["bk"]))
            v = split(F.linear(h_in, w["v"], w["bv"]))
            s = q @ k.transpose(-1, -2) / math.sqrt(dh)
            if causal:
                s = torch.where(tri, s, torch.finfo(s.dtype).min)
            p = torch.softmax(s + ext, dim=-1)
            atts.append(p)
            ctx = (p @ v).permute(0, 2, 1, 3).reshape(1, a.seq, D)
            attn_out = F.linear(ctx, w["o"], w["bo"])
            if causal:
                x = x + attn_out
                hmid = F.gelu(F.linear(F.layer_norm(x, (D,), w["g2"], w["b2"]), w["i"], w["bi"]),
                              approximate="tanh")
                x = x + F.linear(hmid, w["out"], w["bout"])
            else:
                x = F.layer_norm(attn_out + x, (D,), w["g1"], w["b1"], 1e-12)
                hmid = F.gelu(F.linear(x, w["i"], w["bi"]))
                x = F.layer_norm(F.linear(hmid, w["out"], w["bout"]) + x, (D,), w["g2"], w["b2"], 1e-12)
        return x, atts

    times = []
    with torch.inference_mode():
        for run in range(a.runs + 1):
            t0 = time.perf_counter()
            forward()
            t1 = time.perf_counter()
            if run:
                times.append((t1 - t0) * 1000)
    print(json.dumps({"torch": torch.__version__, "blas": torch.__config__.show().count("BLAS"),
                      "model": a.model, "seq": a.seq, "threads": a.threads, "runs": a.runs,
                      "forward_ms_median": statistics.median(times), "forward_ms_min": min(times),
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


if __name__ == "__main__":
    main()
