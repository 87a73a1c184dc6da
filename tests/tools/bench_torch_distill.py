#!/usr/bin/python3
"""PyTorch side of BM_DistillStep (core/bench/kernels_bench.cpp): one distillation
training step, the same models (written by the C++ benchmark into
$TMPDIR/attn-bench-distill/{teacher,student}) and the same work — teacher forward
without gradients, student forward, attention KL per head + MiniLM value relation
over the uniform mapping, backward with autograd, clipping, AdamW — using the
model and loss code of the emitted recipe (app/cli/recipe/train.py).

    /usr/bin/python3 tests/tools/bench_torch_distill.py [--threads N] [--runs R]
Prints the median step time in ms and examples/s as JSON.
"""

import argparse
import json
import os
import random
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "app", "cli", "recipe"))
from train import Transformer, losses  # noqa: E402

from benchutil import median_ms  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    root = os.path.join(os.environ.get("TMPDIR", "/tmp"), "attn-bench-distill")
    teacher = Transformer(os.path.join(root, "teacher")).eval()
    student = Transformer(os.path.join(root, "student"))
    for p in teacher.parameters():
        p.requires_grad_(False)
    rng = random.Random(1)
    B, S = 32, 64
    cfg = {"loss": {"mapping": [1, 3], "attention": "kl", "attention_weight": 1.0, "heads": "auto",
                    "relation_heads": 0, "value_weight": 1.0, "hidden_weight": 0.0,
                    "logit_weight": 0.0, "temperature": 1.0, "lm_weight": 0.0}}
    params = [student.p(n) for n in student.names]
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.01)

    def step():
        ids = torch.tensor([[rng.randint(5, 2047) for _ in range(S)] for _ in range(B)])
        mask = torch.ones(B, S, dtype=torch.long)
        with torch.no_grad():
            t = teacher(ids, mask)
        s = student(ids, mask)
        loss, _ = losses(cfg, student, teacher, s, t, ids, mask, {})
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()

    ms = median_ms(step, args.runs)
    print(json.dumps({"torch": torch.__version__, "threads": args.threads, "step_ms": ms,
                      "examples_per_s": B / ms * 1e3}))


if __name__ == "__main__":
    main()
