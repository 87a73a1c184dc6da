#!/usr/bin/python3
"""Pruning masks from PyTorch's own torch.nn.utils.prune, for tests/core/test_sparse.cpp.

    /usr/bin/python3 tests/tools/make_prune_fixtures.py

Writes tests/data/sparse/*.npy (seeded; no ties among the magnitudes or norms, since PyTorch
orders ties as its topk happens to):
  weights_a.npy [24, 64], weights_b.npy [32, 48]   float32 N(0, 0.05)
  l1_unstructured_30.npy, l1_unstructured_50.npy     masks of A, amount 0.3 / 0.5
  ln_structured_rows_l1_25.npy                       A, amount 0.25, n = 1, dim = 0
  ln_structured_rows_l2_50.npy                       A, amount 0.5,  n = 2, dim = 0
  ln_structured_cols_l1_25.npy                       A, amount 0.25, n = 1, dim = 1
  global_40_a.npy, global_40_b.npy                   global_unstructured(L1Unstructured) of
                                                     A and B together, amount 0.4
Masks are uint8 0/1 (1 = kept), the shape of the weight.
"""

import os

import numpy as np
import torch
import torch.nn.utils.prune as prune

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "sparse")


def linear(w):
    m = torch.nn.Linear(w.shape[1], w.shape[0], bias=False)
    with torch.no_grad():
        m.weight.copy_(w)
    return m


def save(name, a):
    np.save(os.path.join(OUT, name + ".npy"), a)


def main():
    torch.manual_seed(77)
    os.makedirs(OUT, exist_ok=True)
    a = torch.randn(24, 64) * 0.05
    b = torch.randn(32, 48) * 0.05
    assert len(torch.unique(a.abs())) == a.numel() and len(torch.unique(b.abs())) == b.numel()
    save("weights_a", a.numpy())
    save("weights_b", b.numpy())

    def mask(module):
        return module.weight_mask.numpy().astype(np.uint8)

    for amount, name in ((0.3, "l1_unstructured_30"), (0.5, "l1_unstructured_50")):
        m = linear(a)
        prune.l1_unstructured(m, "weight", amount=amount)
        save(name, mask(m))
    for amount, n, dim, name in ((0.25, 1, 0, "ln_structured_rows_l1_25"),
                                 (0.5, 2, 0, "ln_structured_rows_l2_50"),
                                 (0.25, 1, 1, "ln_structured_cols_l1_25")):
        m = linear(a)
        prune.ln_structured(m, "weight", amount=amount, n=n, dim=dim)
        save(name, mask(m))
    ma, mb = linear(a), linear(b)
    prune.global_unstructured([(ma, "weight"), (mb, "weight")],
                              pruning_method=prune.L1Unstructured, amount=0.4)
    save("global_40_a", mask(ma))
    save("global_40_b", mask(mb))
    print("wrote", sorted(os.listdir(OUT)))


if __name__ == "__main__":
    main()
