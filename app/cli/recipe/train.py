#!/usr/bin/env python3
"""Attention-distillation recipe written by `attnstudio-cli distill --emit-recipe`.

The same run as Attention Studio's trainer (core/distill), in PyTorch, for many
GPUs or nodes:

    torchrun --nproc_per_node=8 train.py --config config.json            # one node
    torchrun --nnodes=4 --nproc_per_node=8 --rdzv_backend=c10d \\
             --rdzv_endpoint=HOST:29500 train.py --config config.json      # four nodes
    python3 train.py --config config.json --max-steps 1 --device cpu     # a check on CPU

config.json holds the models, the tokenized corpus file, the layer mapping, the
losses and their weights, the optimiser and the schedule. Definitions (identical
to the engine's, see core/distill/losses.h):
  attention  mse: sum (A_T - A_S)^2 / (heads * sum_examples valid^2)
             frobenius: sum ||A_T - A_S||_F^2 / (heads * examples)
             kl: sum_rows KL(A_T,row || A_S,row) / (heads * valid rows)
             heads one to one when the counts match ("auto"), head-averaged maps, or
             MiniLM-v2 relation heads softmax(Q_r K_r^T / sqrt(D/R))
  value      MiniLM value relation KL(softmax(V_r V_r^T/sqrt(d)) teacher || student)
  hidden     ||h_S W_p^T - h_T||^2 / (valid rows * D_T) per mapped layer
  logit      tau^2 KL(softmax(z_T/tau) || softmax(z_S/tau)), mean over valid rows
  lm         next-token cross-entropy, mean over predicted tokens
Batches: example order from a seeded shuffle per epoch (MT19937-64, as the engine),
padded to the longest example of the batch. With several processes each rank takes
an equal slice of every global batch and gradients are averaged (DDP).
"""
import argparse
import json
import math
import os
import shutil
import struct
import sys

import torch
import torch.nn.functional as F

# ----------------------------------------------------------------- safetensors

_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
           "F64": torch.float64, "I64": torch.int64, "I32": torch.int32, "I8": torch.int8,
           "U8": torch.uint8, "BOOL": torch.bool, "I16": torch.int16}


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {}) or {}
    out = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        t = torch.frombuffer(bytearray(data[b:e]), dtype=_DTYPES[info["dtype"]]) if e > b else \
            torch.empty(0, dtype=_DTYPES[info["dtype"]])
        out[name] = t.reshape(info["shape"]).clone()
    return out, meta


def write_safetensors(path, tensors, metadata):
    names = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
             torch.int64: "I64", torch.int32: "I32", torch.uint8: "U8", torch.int8: "I8",
             torch.bool: "BOOL", torch.float64: "F64", torch.int16: "I16"}
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        raw = t.view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": names[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".partial"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def load_checkpoint(directory):
    index = os.path.join(directory, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
        tensors, meta = {}, {}
        for name in files:
            t, m = read_safetensors(os.path.join(directory, name))
            tensors.update(t)
            meta.update(m)
        return tensors, meta
    return read_safetensors(os.path.join(directory, "model.safetensors"))

# ----------------------------------------------------------------- models


class Transformer(torch.nn.Module):
    """BERT / RoBERTa / DistilBERT (post-LN) and GPT-2 (pre-LN, causal), float32,
    parameters under their Hugging Face names (task-head prefix removed)."""

    def __init__(self, directory):
        super().__init__()
        with open(os.path.join(directory, "config.json")) as f:
            cfg = json.load(f)
        self.directory = directory
        self.kind = cfg.get("model_type", "bert")
        self.gpt2 = self.kind == "gpt2"
        g = lambda *keys, default=None: next((cfg[k] for k in keys if cfg.get(k) is not None), default)
        self.layers = g("num_hidden_layers", "n_layer", "n_layers")
        self.heads = g("num_attention_heads", "n_head", "n_heads")
        self.hidden = g("hidden_size", "n_embd", "dim")
        self.eps = g("layer_norm_eps", "layer_norm_epsilon", default=1e-12 if not self.gpt2 else 1e-5)
        if self.kind == "distilbert":
            self.eps = 1e-12
        self.pad = cfg.get("pad_token_id")
        act = g("hidden_act", "activation_function", "activation", default="gelu")
        self.act = {"gelu": lambda x: F.gelu(x), "relu": F.relu,
                    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
                    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh")}[act]
        tensors, self.metadata = load_checkpoint(directory)
        probe = "wte.weight" if self.gpt2 else "embeddings.word_embeddings.weight"
        self.prefix = next(n[: -len(probe)] for n in tensors if n.endswith(probe))
        self.names = []          # trainable, in a fixed order
        self.others = {}         # everything else of the checkpoint, written back unchanged
        for name, t in tensors.items():
            if name.startswith(self.prefix) and self._is_param(name[len(self.prefix):]):
                short = name[len(self.prefix):]
                short = short.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias")
                self.register_parameter(short.replace(".", "__"), torch.nn.Parameter(t.float()))
                self.names.append(short)
            else:
                self.others[name] = t

    def _is_param(self, short):
        if self.gpt2:
            return short.split(".")[-2:] not in (["attn", "bias"], ["attn", "masked_bias"])  # buffers
        return short.startswith("embeddings.") and "position_ids" not in short or \
            short.startswith("encoder.") or short.startswith("transformer.")

    def p(self, short):
        return getattr(self, short.replace(".", "__"))

    def has(self, short):
        return hasattr(self, short.replace(".", "__"))

    def named(self):
        return {n: self.p(n) for n in self.names}

    def linear(self, x, name, conv1d=False):
        w, b = self.p(name + ".weight"), self.p(name + ".bias")
        w = self.fake_quant(name, w)
        return x @ w + b if conv1d else x @ w.t() + b

    fake_quant = staticmethod(lambda name, w: w)

    def positions(self, ids):
        if self.kind == "roberta":
            m = (ids != self.pad).long()
            return torch.cumsum(m, dim=1) * m + self.pad
        return torch.arange(ids.shape[1], device=ids.device).unsqueeze(0).expand_as(ids)

    def ln(self, x, name):
        return F.layer_norm(x, (self.hidden,), self.p(name + ".weight"), self.p(name + ".bias"), self.eps)

    def attention(self, q, k, v, allowed):
        B, S, D = q.shape
        H, dh = self.heads, D // self.heads
        split = lambda t: t.view(B, S, H, dh).transpose(1, 2)
        s = split(q) @ split(k).transpose(-1, -2) / math.sqrt(dh)
        s = s.masked_fill(~allowed[:, None], float("-inf"))
        p = torch.softmax(s, dim=-1)
        ctx = (p @ split(v)).transpose(1, 2).reshape(B, S, D)
        return p, ctx

    def forward(self, ids, mask):
        """Returns dict: attention [L][B,H,S,S], q/k/v [L][B,S,D], hidden [L][B,S,D], final."""
        B, S = ids.shape
        allowed = mask.bool()[:, None, :].expand(B, S, S)
        if self.gpt2:
            allowed = allowed & torch.ones(S, S, dtype=torch.bool, device=ids.device).tril()[None]
        out = {"attention": [], "q": [], "k": [], "v": [], "hidden": []}
        if self.gpt2:
            x = self.fake_quant("emb", self.p("wte.weight"))[ids] + self.p("wpe.weight")[self.positions(ids)]
            for l in range(self.layers):
                h = f"h.{l}."
                n = self.ln(x, h + "ln_1")
                q, k, v = self.linear(n, h + "attn.c_attn", conv1d=True).split(self.hidden, dim=-1)
                p, ctx = self.attention(q, k, v, allowed)
                x = x + self.linear(ctx, h + "attn.c_proj", conv1d=True)
                n = self.ln(x, h + "ln_2")
                x = x + self.linear(self.act(self.linear(n, h + "mlp.c_fc", conv1d=True)), h + "mlp.c_proj", conv1d=True)
                for key, val in (("attention", p), ("q", q), ("k", k), ("v", v)):
                    out[key].append(val)
                out["hidden"].append(x)
            out["hidden"][-1] = self.ln(x, "ln_f")
        else:
            distil = self.kind == "distilbert"
            e = "embeddings."
            x = self.fake_quant("emb", self.p(e + "word_embeddings.weight"))[ids] + \
                self.p(e + "position_embeddings.weight")[self.positions(ids)]
            if self.has(e + "token_type_embeddings.weight"):
                x = x + self.p(e + "token_type_embeddings.weight")[0]
            x = self.ln(x, e + "LayerNorm")
            for l in range(self.layers):
                if distil:
                    h = f"transformer.layer.{l}."
                    names = [h + "attention.q_lin", h + "attention.k_lin", h + "attention.v_lin",
                             h + "attention.out_lin", h + "sa_layer_norm", h + "ffn.lin1",
                             h + "ffn.lin2", h + "output_layer_norm"]
                else:
                    h = f"encoder.layer.{l}."
                    names = [h + "attention.self.query", h + "attention.self.key",
                             h + "attention.self.value", h + "attention.output.dense",
                             h + "attention.output.LayerNorm", h + "intermediate.dense",
                             h + "output.dense", h + "output.LayerNorm"]
                q, k, v = (self.linear(x, names[i]) for i in range(3))
                p, ctx = self.attention(q, k, v, allowed)
                x = self.ln(self.linear(ctx, names[3]) + x, names[4])
                x = self.ln(self.linear(self.act(self.linear(x, names[5])), names[6]) + x, names[7])
                for key, val in (("attention", p), ("q", q), ("k", k), ("v", v)):
                    out[key].append(val)
                out["hidden"].append(x)
        out["final"] = out["hidden"][-1]
        return out

    def logits(self, final):  # tied LM head (GPT-2)
        return final @ self.fake_quant("emb", self.p("wte.weight")).t()

    def save(self, target):
        os.makedirs(target + ".partial", exist_ok=True)
        for f in ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                  "vocab.txt", "vocab.json", "merges.txt", "generation_config.json"):
            if os.path.exists(os.path.join(self.directory, f)):
                shutil.copy(os.path.join(self.directory, f), os.path.join(target + ".partial", f))
        tensors = dict(self.others)
        for n in self.names:
            tensors[self.prefix + n] = self.p(n).detach().float()
        meta = dict(self.metadata)
        meta["format"] = "pt"
        write_safetensors(os.path.join(target + ".partial", "model.safetensors"), tensors, meta)
        if os.path.exists(target):
            shutil.rmtree(target)
        os.replace(target + ".partial", target)

# ----------------------------------------------------------------- quantization-aware training


def fake_quant_tensor(w, spec):
    """Quantize-dequantize [out, in] w with the engine's formats; straight-through gradient."""
    method, bits, gran, group, sym = spec["method"], spec["bits"], spec["granularity"], spec["group"], spec["symmetric"]
    rows, cols = w.shape
    x = w.detach()
    if gran == "tensor":
        blocks = x.reshape(1, -1)
    elif gran == "channel":
        blocks = x
    else:
        blocks = x.reshape(rows * (cols // group), group)
    if method == "uniform":
        qmax = 2 ** (bits - 1) - 1
        if sym:
            a = blocks.abs().amax(dim=1, keepdim=True)
            s = a / qmax
            s = torch.where(s > 0, s, torch.ones_like(s))
            q = torch.clamp(torch.round(blocks * (1.0 / s)), -qmax, qmax)
            deq = s * q
        else:
            levels = 2 ** bits - 1
            lo = torch.clamp(blocks.amin(dim=1, keepdim=True), max=0.0)
            hi = torch.clamp(blocks.amax(dim=1, keepdim=True), min=0.0)
            s = torch.clamp((hi - lo) / levels, min=torch.finfo(torch.float32).eps)
            z = torch.clamp(-torch.round(lo / s), 0, levels)
            u = torch.clamp(torch.round(blocks * (1.0 / s)) + z, 0, levels)
            deq = s * (u - z)
    elif method == "binary":
        alpha = blocks.abs().mean(dim=1, keepdim=True)
        deq = alpha * torch.where(blocks >= 0, 1.0, -1.0)
    elif method == "ternary":
        delta = 0.7 * blocks.abs().mean(dim=1, keepdim=True)
        big = blocks.abs() > delta
        alpha = (blocks.abs() * big).sum(dim=1, keepdim=True) / big.sum(dim=1, keepdim=True).clamp(min=1)
        deq = alpha * torch.sign(blocks) * big
    else:
        raise SystemExit(f"QAT method {method} is not in this recipe")
    deq = deq.reshape(rows, cols)
    return w + (deq - x)

# ----------------------------------------------------------------- batches


class MT19937_64:
    def __init__(self, seed):
        self.mt = [0] * 312
        self.index = 312
        self.mt[0] = seed & 0xFFFFFFFFFFFFFFFF
        for i in range(1, 312):
            self.mt[i] = (6364136223846793005 * (self.mt[i - 1] ^ (self.mt[i - 1] >> 62)) + i) & 0xFFFFFFFFFFFFFFFF

    def __call__(self):
        if self.index >= 312:
            for i in range(312):
                x = (self.mt[i] & 0xFFFFFFFF80000000) | (self.mt[(i + 1) % 312] & 0x7FFFFFFF)
                xa = x >> 1
                if x & 1:
                    xa ^= 0xB5026F5AA96619E9
                self.mt[i] = self.mt[(i + 156) % 312] ^ xa
            self.index = 0
        y = self.mt[self.index]
        self.index += 1
        y ^= (y >> 29) & 0x5555555555555555
        y ^= (y << 17) & 0x71D67FFFEDA60000
        y ^= (y << 37) & 0xFFF7EEE000000000
        y ^= y >> 43
        return y & 0xFFFFFFFFFFFFFFFF


class Batches:
    def __init__(self, examples, batch, seed, pad):
        self.examples, self.batch, self.seed, self.pad = examples, batch, seed, pad
        self.epoch, self.perm = -1, None

    def permutation(self, epoch):
        if epoch != self.epoch:
            E = len(self.examples)
            perm = list(range(E))
            rng = MT19937_64((self.seed * 1000003 + epoch) & 0xFFFFFFFFFFFFFFFF)
            for k in range(E - 1, 0, -1):
                j = rng() % (k + 1)
                perm[k], perm[j] = perm[j], perm[k]
            self.epoch, self.perm = epoch, perm
        return self.perm

    def __call__(self, step):
        E = len(self.examples)
        chosen = []
        for i in range(self.batch):
            g = step * self.batch + i
            chosen.append(self.examples[self.permutation(g // E)[g % E]])
        S = max(len(e) for e in chosen)
        ids = torch.full((len(chosen), S), self.pad, dtype=torch.long)
        mask = torch.zeros((len(chosen), S), dtype=torch.long)
        for b, e in enumerate(chosen):
            ids[b, : len(e)] = torch.tensor(e)
            mask[b, : len(e)] = 1
        return ids, mask

# ----------------------------------------------------------------- losses


def row_loss(kind, T, S, rows):
    """Sum over valid query rows of the per-row loss. T, S: [..., S, S]; rows: [B, S] bool."""
    if kind == "kl":
        logS = torch.log(S.clamp_min(1e-30))
        safeT = torch.where(T > 0, T, torch.ones_like(T))
        per = torch.where(T > 0, T * (torch.log(safeT) - logS), torch.zeros_like(T)).sum(-1)
    else:
        per = ((T - S) ** 2).sum(-1)
    while rows.dim() < per.dim():
        rows = rows.unsqueeze(1)
    return (per * rows).sum()


def map_scale(kind, norm, heads):
    return {"kl": 1.0 / (heads * norm["rows"]), "mse": 1.0 / (heads * norm["entries"]),
            "frobenius": 1.0 / (heads * norm["examples"])}[kind]


def relation(a, b, R, allowed):
    B, S, D = a.shape
    d = D // R
    split = lambda t: t.view(B, S, R, d).transpose(1, 2)
    s = split(a) @ split(b).transpose(-1, -2) / math.sqrt(d)
    return torch.softmax(s.masked_fill(~allowed[:, None], float("-inf")), dim=-1)


def allowed_for(model, mask):
    B, S = mask.shape
    allowed = mask.bool()[:, None, :].expand(B, S, S)
    if model.gpt2:
        allowed = allowed & torch.ones(S, S, dtype=torch.bool, device=mask.device).tril()[None]
    return allowed


def losses(cfg, student, teacher, s, t, ids, mask, projections):
    L = cfg["loss"]
    rows = mask.bool()
    valid = mask.sum(1).double()
    norm = {"examples": float(mask.shape[0]), "rows": float(valid.sum()), "entries": float((valid ** 2).sum()),
            "lm": float((mask[:, :-1] * mask[:, 1:]).sum())}
    total = torch.zeros((), dtype=torch.float64)
    parts = {"attention": [0.0] * student.layers, "value": 0.0, "hidden": 0.0, "logit": 0.0, "lm": 0.0}
    for sl, tl in enumerate(L["mapping"]):
        if tl < 0 or teacher is None:
            continue
        R = L["relation_heads"] or student.heads
        if L["attention"] != "none" and L["attention_weight"] > 0:
            if L["heads"] == "relation":
                Ts = relation(t["q"][tl], t["k"][tl], R, allowed_for(teacher, mask))
                Ss = relation(s["q"][sl], s["k"][sl], R, allowed_for(student, mask))
                value = row_loss(L["attention"], Ts, Ss, rows) * map_scale(L["attention"], norm, R)
            else:
                A_T, A_S = t["attention"][tl], s["attention"][sl]
                if L["heads"] == "auto" and teacher.heads == student.heads:
                    heads = student.heads
                else:
                    A_T, A_S, heads = A_T.mean(1), A_S.mean(1), 1
                value = row_loss(L["attention"], A_T, A_S, rows) * map_scale(L["attention"], norm, heads)
            parts["attention"][sl] += float(value)
            total = total + L["attention_weight"] * value
        if L["value_weight"] > 0:
            Tv = relation(t["v"][tl], t["v"][tl], R, allowed_for(teacher, mask))
            Sv = relation(s["v"][sl], s["v"][sl], R, allowed_for(student, mask))
            value = row_loss("kl", Tv, Sv, rows) / (R * norm["rows"])
            parts["value"] += float(value)
            total = total + L["value_weight"] * value
        if L["hidden_weight"] > 0:
            hs, ht = s["hidden"][sl], t["hidden"][tl]
            if str(sl) in projections:
                hs = hs @ projections[str(sl)].t()
            diff = (hs - ht) * mask[..., None]
            value = (diff.double() ** 2).sum() / (norm["rows"] * ht.shape[-1])
            parts["hidden"] += float(value)
            total = total + L["hidden_weight"] * value
    if L["logit_weight"] > 0 or L["lm_weight"] > 0:
        zs = student.logits(s["final"])
        if L["logit_weight"] > 0 and teacher is not None:
            tau = L["temperature"]
            logq = F.log_softmax(teacher.logits(t["final"]) / tau, -1)
            logp = F.log_softmax(zs / tau, -1)
            kl = (logq.exp() * (logq - logp)).sum(-1)
            value = tau * tau * (kl * mask).sum() / norm["rows"]
            parts["logit"] += float(value)
            total = total + L["logit_weight"] * value
        if L["lm_weight"] > 0 and norm["lm"] > 0:
            logp = F.log_softmax(zs[:, :-1], -1)
            nll = -logp.gather(-1, ids[:, 1:, None]).squeeze(-1)
            value = (nll * mask[:, :-1] * mask[:, 1:]).sum() / norm["lm"]
            parts["lm"] += float(value)
            total = total + L["lm_weight"] * value
    return total, parts


def group_lasso(model, gl):
    if not gl or gl["lambda"] <= 0:
        return torch.zeros(())
    D, H = model.hidden, model.heads
    dh = D // H
    total = torch.zeros(())
    for l in range(model.layers):
        names = layer_linears(model, l)
        if gl["groups"] == "heads":
            for h in range(H):
                sl = slice(h * dh, (h + 1) * dh)
                parts = []
                for role in ("q", "k", "v"):
                    w, b = linear_weight(model, names, role)
                    parts += [w[sl].reshape(-1), b[sl]]
                wo, _ = linear_weight(model, names, "o")
                parts.append(wo[:, sl].reshape(-1))
                total = total + torch.cat(parts).norm()
        else:
            wi, bi = linear_weight(model, names, "ffn_in")
            wo, _ = linear_weight(model, names, "ffn_out")
            total = total + torch.cat([wi, bi[:, None], wo.t()], dim=1).norm(dim=1).sum()
    return gl["lambda"] * total


def layer_linears(model, l):
    if model.gpt2:
        h = f"h.{l}."
        return {"qkv": h + "attn.c_attn", "o": h + "attn.c_proj", "ffn_in": h + "mlp.c_fc", "ffn_out": h + "mlp.c_proj"}
    if model.kind == "distilbert":
        h = f"transformer.layer.{l}."
        return {"q": h + "attention.q_lin", "k": h + "attention.k_lin", "v": h + "attention.v_lin",
                "o": h + "attention.out_lin", "ffn_in": h + "ffn.lin1", "ffn_out": h + "ffn.lin2"}
    h = f"encoder.layer.{l}."
    return {"q": h + "attention.self.query", "k": h + "attention.self.key", "v": h + "attention.self.value",
            "o": h + "attention.output.dense", "ffn_in": h + "intermediate.dense", "ffn_out": h + "output.dense"}


def linear_weight(model, names, role):
    """[out, in] weight and bias of a role, GPT-2's Conv1D transposed and c_attn split."""
    if model.gpt2:
        if role in ("q", "k", "v"):
            i = "qkv".index(role)
            D = model.hidden
            w, b = model.p(names["qkv"] + ".weight"), model.p(names["qkv"] + ".bias")
            return w[:, i * D:(i + 1) * D].t(), b[i * D:(i + 1) * D]
        return model.p(names[role] + ".weight").t(), model.p(names[role] + ".bias")
    return model.p(names[role] + ".weight"), model.p(names[role] + ".bias")

# ----------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "config.json"))
    ap.add_argument("--max-steps", type=int, default=None, help="stop after this many steps")
    ap.add_argument("--device", default=None, help="cpu, cuda (default: cuda when available)")
    ap.add_argument("--out", default=None, help="output directory (default: the config's)")
    ap.add_argument("--log", default=None, help="JSON lines, one per step (rank 0)")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads")
    args = ap.parse_args()
    with open(args.config) as f:
        cfg = json.load(f)
    here = os.path.dirname(os.path.abspath(args.config))
    rel = lambda p: p if os.path.isabs(p) else os.path.join(here, p)
    if args.threads:
        torch.set_num_threads(args.threads)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if world > 1:
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(device)
    torch.manual_seed(cfg["seed"])
    student = Transformer(rel(cfg["student"])).to(device)
    teacher = Transformer(rel(cfg["teacher"])).to(device).eval() if cfg.get("teacher") else None
    if teacher is not None:
        for p in teacher.parameters():
            p.requires_grad_(False)
    qat = cfg.get("qat")
    if qat:
        table = qat["tensors"]  # HF weight name (no prefix) -> spec

        def fq(name, w):
            if name == "emb":
                key = "wte.weight" if student.gpt2 else "embeddings.word_embeddings.weight"
            else:
                key = name + ".weight"
            spec = table.get(key)
            if spec is None:
                return w
            if student.gpt2 and key.endswith("c_attn.weight"):  # q, k, v thirds of [in, 3D], each [out, in]
                D = student.hidden
                parts = [fake_quant_tensor(w[:, i * D:(i + 1) * D].t(), spec[i]).t() if spec[i] else w[:, i * D:(i + 1) * D]
                         for i in range(3)]
                return torch.cat(parts, dim=1)
            if student.gpt2:
                return fake_quant_tensor(w.t(), spec).t()
            return fake_quant_tensor(w, spec)
        student.fake_quant = fq
    projections = {}
    if cfg.get("projections"):
        tensors, _ = read_safetensors(rel(cfg["projections"]))
        projections = {k: torch.nn.Parameter(v.float().to(device)) for k, v in tensors.items()}
    with open(rel(cfg["corpus"])) as f:
        examples = [json.loads(line) for line in f if line.strip()]
    opt_cfg = cfg["optimizer"]
    decay, no_decay = [], []
    for n in student.names:
        (no_decay if n.endswith(".bias") or "LayerNorm" in n or "ln_" in n or "layer_norm" in n else decay).append(student.p(n))
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": opt_cfg["weight_decay"]},
         {"params": no_decay + list(projections.values()), "weight_decay": 0.0}],
        lr=opt_cfg["lr"], betas=(opt_cfg["beta1"], opt_cfg["beta2"]), eps=opt_cfg["eps"])
    steps, warmup = cfg["steps"], opt_cfg["warmup"]

    def schedule(step):  # multiplier of lr at step (0-based), as the engine
        if warmup > 0 and step < warmup:
            return (step + 1) / warmup
        rest = steps - warmup
        return 1.0 if rest <= 0 else max(0.0, (steps - step) / rest)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    model = student
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(student)
    batches = Batches(examples, cfg["batch"], cfg["seed"], cfg["pad_id"])
    log = open(args.log, "w") if args.log and rank == 0 else None
    last = steps if args.max_steps is None else min(steps, args.max_steps)
    for step in range(last):
        ids, mask = batches(step)
        if world > 1:  # each rank its slice of the global batch
            ids, mask = ids.chunk(world)[rank], mask.chunk(world)[rank]
        ids, mask = ids.to(device), mask.to(device)
        with torch.no_grad():
            t = teacher(ids, mask) if teacher is not None else None
        s = model(ids, mask)
        loss, parts = losses(cfg, student, teacher, s, t, ids, mask, projections)
        penalty = group_lasso(student, cfg.get("group_lasso"))
        optimizer.zero_grad(set_to_none=True)
        (loss + penalty).backward()
        params = [student.p(n) for n in student.names] + list(projections.values())
        for p in params:  # parameters no loss reaches still get weight decay, as in the engine
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        clip = opt_cfg["clip"]
        norm = torch.nn.utils.clip_grad_norm_(params, clip if clip > 0 else float("inf"))
        lr = optimizer.param_groups[0]["lr"]
        optimizer.step()
        scheduler.step()
        if log:
            log.write(json.dumps({"step": step + 1, "loss": float(loss), "attention": parts["attention"],
                                  "value": parts["value"], "hidden": parts["hidden"], "logit": parts["logit"],
                                  "lm": parts["lm"], "group_lasso": float(penalty), "lr": lr,
                                  "grad_norm": float(norm)}) + "\n")
            log.flush()
    if rank == 0:
        student.save(args.out or rel(cfg["out"]))
    if world > 1:
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
