#!/usr/bin/python3
"""Expected bert-base-uncased ids from an independent implementation.

A faithful port of Hugging Face transformers' slow BertTokenizer path:
PreTrainedTokenizer.tokenize (lowercase outside special tokens, split on special
tokens), BasicTokenizer (clean text, pad CJK, NFC, lowercase, strip accents,
split on punctuation) and WordpieceTokenizer (greedy longest-match-first), then
build_inputs_with_special_tokens ([CLS] ... [SEP]). Only the standard library.

Usage: /usr/bin/python3 tests/tools/ref_bert.py tests/data/tokenizers/bert-base-uncased/vocab.txt \
           tests/data/tokenizers/cases.json tests/data/tokenizers/expected_bert.json
"""
import json
import re
import sys
import unicodedata


def load_vocab(vocab_file):
    vocab = {}
    with open(vocab_file, "r", encoding="utf-8") as reader:
        tokens = reader.readlines()
    for index, token in enumerate(tokens):
        token = token.rstrip("\n")
        vocab[token] = index
    return vocab


def whitespace_tokenize(text):
    text = text.strip()
    if not text:
        return []
    return text.split()


def _is_whitespace(char):
    if char == " " or char == "\t" or char == "\n" or char == "\r":
        return True
    return unicodedata.category(char) == "Zs"


def _is_control(char):
    if char == "\t" or char == "\n" or char == "\r":
        return False
    return unicodedata.category(char).startswith("C")


def _is_punctuation(char):
    cp = ord(char)
    if (cp >= 33 and cp <= 47) or (cp >= 58 and cp <= 64) or (cp >= 91 and cp <= 96) or \
            (cp >= 123 and cp <= 126):
        return True
    return unicodedata.category(char).startswith("P")


class BasicTokenizer:
    def __init__(self, do_lower_case=True, never_split=None, tokenize_chinese_chars=True,
                 strip_accents=None, do_split_on_punc=True):
        self.do_lower_case = do_lower_case
        self.never_split = set(never_split or [])
        self.tokenize_chinese_chars = tokenize_chinese_chars
        self.strip_accents = strip_accents
        self.do_split_on_punc = do_split_on_punc

    def tokenize(self, text, never_split=None):
        never_split = self.never_split.union(set(never_split)) if never_split else self.never_split
        text = self._clean_text(text)
        if self.tokenize_chinese_chars:
            text = self._tokenize_chinese_chars(text)
        unicode_normalized_text = unicodedata.normalize("NFC", text)
        orig_tokens = whitespace_tokenize(unicode_normalized_text)
        split_tokens = []
        for token in orig_tokens:
            if token not in never_split:
                if self.do_lower_case:
                    token = token.lower()
                    if self.strip_accents is not False:
                        token = self._run_strip_accents(token)
                elif self.strip_accents:
                    token = self._run_strip_accents(token)
            split_tokens.extend(self._run_split_on_punc(token, never_split))
        return whitespace_tokenize(" ".join(split_tokens))

    def _run_strip_accents(self, text):
        text = unicodedata.normalize("NFD", text)
        return "".join(c for c in text if unicodedata.category(c) != "Mn")

    def _run_split_on_punc(self, text, never_split=None):
        if not self.do_split_on_punc or (never_split is not None and text in never_split):
            return [text]
        output = []
        start_new_word = True
        for char in text:
            if _is_punctuation(char):
                output.append([char])
                start_new_word = True
            else:
                if start_new_word:
                    output.append([])
                start_new_word = False
                output[-1].append(char)
        return ["".join(x) for x in output]

    def _tokenize_chinese_chars(self, text):
        output = []
        for char in text:
            if self._is_chinese_char(ord(char)):
                output.extend([" ", char, " "])
            else:
                output.append(char)
        return "".join(output)

    def _is_chinese_char(self, cp):
        return ((0x4E00 <= cp <= 0x9FFF) or (0x3400 <= cp <= 0x4DBF) or
                (0x20000 <= cp <= 0x2A6DF) or (0x2A700 <= cp <= 0x2B73F) or
                (0x2B740 <= cp <= 0x2B81F) or (0x2B820 <= cp <= 0x2CEAF) or
                (0xF900 <= cp <= 0xFAFF) or (0x2F800 <= cp <= 0x2FA1F))

    def _clean_text(self, text):
        output = []
        for char in text:
            cp = ord(char)
            if cp == 0 or cp == 0xFFFD or _is_control(char):
                continue
            output.append(" " if _is_whitespace(char) else char)
        return "".join(output)


class WordpieceTokenizer:
    def __init__(self, vocab, unk_token, max_input_chars_per_word=100):
        self.vocab = vocab
        self.unk_token = unk_token
        self.max_input_chars_per_word = max_input_chars_per_word

    def tokenize(self, text):
        output_tokens = []
        for token in whitespace_tokenize(text):
            chars = list(token)
            if len(chars) > self.max_input_chars_per_word:
                output_tokens.append(self.unk_token)
                continue
            is_bad = False
            start = 0
            sub_tokens = []
            while start < len(chars):
                end = len(chars)
                cur_substr = None
                while start < end:
                    substr = "".join(chars[start:end])
                    if start > 0:
                        substr = "##" + substr
                    if substr in self.vocab:
                        cur_substr = substr
                        break
                    end -= 1
                if cur_substr is None:
                    is_bad = True
                    break
                sub_tokens.append(cur_substr)
                start = end
            if is_bad:
                output_tokens.append(self.unk_token)
            else:
                output_tokens.extend(sub_tokens)
        return output_tokens


class BertTokenizer:
    SPECIALS = ["[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]"]  # all_special_tokens order

    def __init__(self, vocab_file, do_lower_case=True):
        self.vocab = load_vocab(vocab_file)
        self.do_lower_case = do_lower_case
        self.basic_tokenizer = BasicTokenizer(do_lower_case=do_lower_case)
        self.wordpiece_tokenizer = WordpieceTokenizer(self.vocab, "[UNK]")

    def _split_on_specials(self, text):
        # What tokens_trie.split does for these non-overlapping specials.
        pieces, start, i = [], 0, 0
        while i < len(text):
            hit = next((s for s in sorted(self.SPECIALS, key=len, reverse=True)
                        if text.startswith(s, i)), None)
            if hit is None:
                i += 1
                continue
            if i > start:
                pieces.append(text[start:i])
            pieces.append(hit)
            i += len(hit)
            start = i
        if start < len(text):
            pieces.append(text[start:])
        return pieces

    def tokenize(self, text):
        if self.do_lower_case:
            # PreTrainedTokenizer.tokenize: one character at a time, so no final-sigma rule.
            escaped = [re.escape(s) for s in self.SPECIALS]
            pattern = r"(" + r"|".join(escaped) + r")|" + r"(.+?)"
            text = re.sub(pattern, lambda m: m.groups()[0] or m.groups()[1].lower(), text)
        out = []
        for piece in self._split_on_specials(text):
            if piece in self.SPECIALS:
                out.append(piece)
                continue
            for token in self.basic_tokenizer.tokenize(piece, never_split=self.SPECIALS):
                if token in self.basic_tokenizer.never_split:
                    out.append(token)
                else:
                    out += self.wordpiece_tokenizer.tokenize(token)
        return out

    def encode(self, text):
        tokens = ["[CLS]"] + self.tokenize(text) + ["[SEP]"]
        unk = self.vocab["[UNK]"]
        return [self.vocab.get(t, unk) for t in tokens], tokens


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    vocab_file, cases_file, out_file = sys.argv[1:]
    tok = BertTokenizer(vocab_file)
    assert tok.encode("hello world")[0] == [101, 7592, 2088, 102]
    with open(cases_file, encoding="utf-8") as f:
        cases = json.load(f)["cases"]
    out = []
    for c in cases:
        if "bert" in c.get("skip", []):
            continue
        ids, tokens = tok.encode(c["text"])
        out.append({"name": c["name"], "text": c["text"], "ids": ids, "tokens": tokens})
    doc = {"about": "bert-base-uncased ids from tests/tools/ref_bert.py (Python %s, Unicode %s)"
                    % (sys.version.split()[0], unicodedata.unidata_version),
           "cases": out}
    with open(out_file, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print("wrote %d cases to %s" % (len(out), out_file))


if __name__ == "__main__":
    main()
