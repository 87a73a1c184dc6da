#!/usr/bin/python3
"""PyTorch side of the pruning benchmarks (core/bench/kernels_bench.cpp), same shapes: every
Linear weight of a BERT-base-sized model, 12 × (4 × 768×768 + 3072×768 + 768×3072).

  l1_unstructured  torch.nn.utils.prune.l1_unstructured(amount=0.5) on each Linear
  global           prune.global_unstructured(L1Unstructured, amount=0.5) over all 72
  nm_2_4           2:4 masks the usual PyTorch way: |w| in groups of 4, topk(2), scatter

    /usr/bin/python3 tests/tools/bench_torch_prune.py [--threads N] [--runs R]
Prints median wall times in ms as JSON.
"""

import argparse
import json

import torch
import torch.nn.utils.prune as prune

from benchutil import median_ms


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    shapes = [(768, 768)] * 4 + [(3072, 768), (768, 3072)]
    ws = [torch.randn(o, i, generator=g) * 0.02 for _ in range(12) for (o, i) in shapes]

    def modules():
        mods = []
        for w in ws:
            m = torch.nn.Linear(w.shape[1], w.shape[0], bias=False)
            with torch.no_grad():
                m.weight.copy_(w)
            mods.append(m)
        return mods

    def l1():
        for m in mods:
            prune.l1_unstructured(m, "weight", amount=0.5)
            prune.remove(m, "weight")

    def global_l1():
        prune.global_unstructured([(m, "weight") for m in mods],
                                  pruning_method=prune.L1Unstructured, amount=0.5)
        for m in mods:
            prune.remove(m, "weight")

    def nm():
        for w in ws:
            a = w.abs().reshape(-1, 4)
            idx = a.topk(2, dim=1).indices
            torch.zeros_like(a).scatter_(1, idx, 1.0).reshape(w.shape)

    with torch.no_grad():
        mods = modules()
        t_l1 = median_ms(l1, args.runs)
        mods = modules()
        t_global = median_ms(global_l1, args.runs)
        t_nm = median_ms(nm, args.runs)
    print(json.dumps({"threads": args.threads, "l1_unstructured_ms": t_l1,
                      "global_unstructured_ms": t_global, "nm_2_4_ms": t_nm}, indent=2))


if __name__ == "__main__":
    main()
