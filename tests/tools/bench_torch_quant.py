#!/usr/bin/python3
"""PyTorch side of the quantization benchmarks (core/bench/kernels_bench.cpp), same shapes:

  int8  torch.quantize_per_channel (qint8, scale max|w_r|/127) of every Linear weight of a
        BERT-base-sized model: 12 × (4 × 768×768 + 3072×768 + 768×3072) = 84.9 M weights
  kmeans 16-level Lloyd k-means of a 768×3072 matrix, 1-D, initial levels at the
        (k + 1/2)/16 quantiles, assignment with torch.bucketize on the midpoints, run until no
        assignment changes (our stopping rule) and for a fixed 20 iterations

    /usr/bin/python3 tests/tools/bench_torch_quant.py [--threads N] [--runs R]
Prints median wall times in ms as JSON.
"""

import argparse
import json

import torch

from benchutil import median_ms


def lloyd(x, k, max_iter):
    xs = x.sort().values
    n = x.numel()
    c = xs[((torch.arange(k, dtype=torch.float64) + 0.5) / k * n).long().clamp(max=n - 1)].clone()
    prev = None
    it = 0
    while it < max_iter:
        mids = c[:-1] + 0.5 * (c[1:] - c[:-1])
        a = torch.bucketize(x, mids)  # number of midpoints below x (ties to the lower level)
        if prev is not None and torch.equal(a, prev):
            break
        sums = torch.zeros(k, dtype=torch.float64).scatter_add_(0, a, x.double())
        cnt = torch.bincount(a, minlength=k)
        c = torch.where(cnt > 0, (sums / cnt.clamp(min=1)).float(), c).sort().values
        prev = a
        it += 1
    return c, it


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    shapes = [(768, 768)] * 4 + [(3072, 768), (768, 3072)]
    ws = [torch.randn(o, i, generator=g) * 0.02 for _ in range(12) for (o, i) in shapes]

    def int8():
        for w in ws:
            s = (w.abs().amax(dim=1) / 127).double()
            torch.quantize_per_channel(w, s, torch.zeros(w.shape[0], dtype=torch.int64), 0,
                                       torch.qint8)

    x = (torch.randn(3072 * 768, generator=g) * 0.02)
    _, iters = lloyd(x, 16, 10**6)
    out = {
        "threads": args.threads,
        "int8_per_channel_bert_base_ms": median_ms(int8, args.runs),
        "kmeans16_to_convergence_ms": median_ms(lambda: lloyd(x, 16, 10**6), 3),
        "kmeans16_iterations": iters,
        "kmeans16_20_iterations_ms": median_ms(lambda: lloyd(x, 16, 20), args.runs),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
