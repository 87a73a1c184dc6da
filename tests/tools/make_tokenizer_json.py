#!/usr/bin/python3
"""Writes Hugging Face tokenizer.json files equivalent to the vocabulary files.

The layout follows what `tokenizers` (PreTrainedTokenizerFast.save_pretrained)
writes for these checkpoints, so the test can prove that tokenizer.json loading
gives the same ids as vocab.txt / vocab.json + merges.txt:

  bert-base-uncased-json/tokenizer.json  WordPiece + BertNormalizer + TemplateProcessing
  gpt2-json/tokenizer.json               BPE, merges as "a b" strings (tokenizers < 0.20)
  tiny-bpe-pairs/tokenizer.json          the first 2000 GPT-2 merges as ["a", "b"] pairs
                                         (tokenizers >= 0.20), RobertaProcessing <s> … </s>
  tiny-bpe-files/vocab.json, merges.txt  the same tiny tokenizer as plain files

Usage: /usr/bin/python3 tests/tools/make_tokenizer_json.py
"""
import json
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "tests", "data", "tokenizers")
TINY_MERGES = 2000


def added(token_id, content, lstrip=False):
    return {"id": token_id, "content": content, "single_word": False, "lstrip": lstrip,
            "rstrip": False, "normalized": False, "special": True}


def write_json(path, doc):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    print("wrote", os.path.relpath(path, ROOT))


def bert():
    with open(os.path.join(DATA, "bert-base-uncased", "vocab.txt"), encoding="utf-8") as f:
        tokens = [line.rstrip("\n") for line in f]
    vocab = {t: i for i, t in enumerate(tokens)}
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

    def special(name):
        return {"id": name, "ids": [vocab[name]], "tokens": [name]}

    doc = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [added(vocab[s], s) for s in specials],
        "normalizer": {"type": "BertNormalizer", "clean_text": True,
                       "handle_chinese_chars": True, "strip_accents": None, "lowercase": True},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}},
                       {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}},
                     {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 0}},
                     {"Sequence": {"id": "B", "type_id": 1}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
            "special_tokens": {"[CLS]": special("[CLS]"), "[SEP]": special("[SEP]")},
        },
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100, "vocab": vocab},
    }
    write_json(os.path.join(DATA, "bert-base-uncased-json", "tokenizer.json"), doc)


def read_gpt2():
    with open(os.path.join(DATA, "gpt2", "vocab.json"), encoding="utf-8") as f:
        vocab = json.load(f)
    with open(os.path.join(DATA, "gpt2", "merges.txt"), encoding="utf-8") as f:
        lines = f.read().split("\n")
    merges = [tuple(l.split(" ")) for l in lines if l and not l.startswith("#version")]
    return vocab, merges


def byte_level(add_prefix_space, trim_offsets):
    return {"type": "ByteLevel", "add_prefix_space": add_prefix_space,
            "trim_offsets": trim_offsets, "use_regex": True}


def gpt2():
    vocab, merges = read_gpt2()
    doc = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [dict(added(vocab["<|endoftext|>"], "<|endoftext|>"), normalized=True)],
        "normalizer": None,
        "pre_tokenizer": byte_level(False, True),
        "post_processor": byte_level(True, False),
        "decoder": byte_level(True, True),
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": "", "end_of_word_suffix": "", "fuse_unk": False,
                  "byte_fallback": False, "vocab": vocab,
                  "merges": ["%s %s" % m for m in merges]},
    }
    write_json(os.path.join(DATA, "gpt2-json", "tokenizer.json"), doc)


def tiny():
    vocab, merges = read_gpt2()
    merges = merges[:TINY_MERGES]
    byte_tokens = [t for t, i in vocab.items() if i < 256]
    keep = set(byte_tokens) | {a + b for a, b in merges}
    tiny_vocab = {t: i for t, i in vocab.items() if t in keep}
    # Ids stay those of GPT-2 (sparse above 256); the framing tokens go at the end.
    next_id = max(tiny_vocab.values()) + 1
    for t in ["<s>", "</s>", "<pad>"]:
        tiny_vocab[t] = next_id
        next_id += 1
    doc = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [added(tiny_vocab[t], t) for t in ["<s>", "</s>", "<pad>"]],
        "normalizer": None,
        "pre_tokenizer": byte_level(False, True),
        "post_processor": {"type": "RobertaProcessing", "sep": ["</s>", tiny_vocab["</s>"]],
                           "cls": ["<s>", tiny_vocab["<s>"]], "trim_offsets": True,
                           "add_prefix_space": False},
        "decoder": byte_level(True, True),
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": tiny_vocab, "merges": [list(m) for m in merges]},
    }
    write_json(os.path.join(DATA, "tiny-bpe-pairs", "tokenizer.json"), doc)
    files = os.path.join(DATA, "tiny-bpe-files")
    write_json(os.path.join(files, "vocab.json"), tiny_vocab)
    with open(os.path.join(files, "merges.txt"), "w", encoding="utf-8", newline="\n") as f:
        f.write("#version: 0.2\n")
        for a, b in merges:
            f.write("%s %s\n" % (a, b))
    print("wrote", os.path.relpath(os.path.join(files, "merges.txt"), ROOT))


if __name__ == "__main__":
    bert()
    gpt2()
    tiny()
