#include "core/text/wordpiece.h"

#include <algorithm>

#include "core/text/unicode.h"

namespace attn::text {
namespace {

// BERT's _is_punctuation: Unicode P* plus every non-alphanumeric ASCII symbol
// ("$", "+", "^", "`" ... are S* in Unicode but BERT splits on them too).
bool isBertPunctuation(char32_t cp) {
  if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) ||
      (cp >= 123 && cp <= 126)) {
    return true;
  }
  return isPunctuation(cp);
}

// BERT's _is_control: all of C* except the three whitespace controls.
bool isBertControl(char32_t cp) {
  if (cp == U'\t' || cp == U'\n' || cp == U'\r') return false;
  return isOther(cp);
}

// BERT's _is_whitespace, used only to map characters to ' ' when cleaning.
bool isBertWhitespace(char32_t cp) {
  return cp == U' ' || cp == U'\t' || cp == U'\n' || cp == U'\r' || category(cp) == Category::Zs;
}

struct Tracked {
  char32_t cp;
  int32_t origin;
};

}  // namespace

std::vector<NormalizedWord> bertPreTokenize(std::u32string_view text, int32_t originBase,
                                            const WordPieceOptions& options) {
  std::vector<Tracked> chars;
  chars.reserve(text.size());
  std::u32string scratch;
  for (size_t k = 0; k < text.size(); ++k) {
    char32_t cp = text[k];
    const int32_t origin = originBase + static_cast<int32_t>(k);
    if (options.cleanText) {
      if (cp == 0 || cp == kReplacementChar || isBertControl(cp)) continue;
      if (isBertWhitespace(cp)) cp = U' ';
    }
    const bool pad = options.handleChineseChars && isCjkIdeograph(cp);
    if (pad) chars.push_back({U' ', origin});
    scratch.clear();
    // Hugging Face lowercases one code point at a time (no final-sigma rule).
    if (options.lowercase) {
      appendLowercase(cp, scratch);
    } else {
      scratch.push_back(cp);
    }
    if (options.stripAccents) {
      std::u32string decomposed;
      for (char32_t c : scratch) appendCanonicalDecomposition(c, decomposed);
      scratch.swap(decomposed);
    }
    for (char32_t c : scratch) chars.push_back({c, origin});
    if (pad) chars.push_back({U' ', origin});
  }

  if (options.stripAccents) {
    // Canonical ordering only matters for marks that survive (Mc with a class).
    size_t i = 0;
    while (i < chars.size()) {
      if (combiningClass(chars[i].cp) == 0) {
        ++i;
        continue;
      }
      size_t j = i;
      while (j < chars.size() && combiningClass(chars[j].cp) != 0) ++j;
      std::stable_sort(chars.begin() + static_cast<std::ptrdiff_t>(i),
                       chars.begin() + static_cast<std::ptrdiff_t>(j),
                       [](const Tracked& a, const Tracked& b) {
                         return combiningClass(a.cp) < combiningClass(b.cp);
                       });
      i = j;
    }
    std::erase_if(chars, [](const Tracked& t) { return isNonspacingMark(t.cp); });
  }

  std::vector<NormalizedWord> words;
  NormalizedWord current;
  auto flush = [&] {
    if (!current.chars.empty()) words.push_back(std::move(current));
    current = NormalizedWord{};
  };
  for (const Tracked& t : chars) {
    // Once cleaned, Python's str.split() and White_Space (the Rust tokenizer's
    // test) agree; U+2028/U+2029 survive cleaning and still split.
    if (isWhiteSpace(t.cp)) {
      flush();
    } else if (isBertPunctuation(t.cp)) {
      flush();
      current.chars.push_back(t.cp);
      current.origins.push_back(t.origin);
      flush();
    } else {
      current.chars.push_back(t.cp);
      current.origins.push_back(t.origin);
    }
  }
  flush();
  return words;
}

Result<std::shared_ptr<WordPieceTokenizer>> WordPieceTokenizer::create(
    const std::vector<std::pair<std::string, int32_t>>& vocab, WordPieceOptions options,
    std::vector<AddedToken> added, Framing framing, int32_t padId) {
  if (vocab.empty()) return makeError("the vocabulary is empty");
  if (options.maxInputCharsPerWord <= 0) {
    return makeError("max_input_chars_per_word must be positive");
  }
  std::shared_ptr<WordPieceTokenizer> t(new WordPieceTokenizer());
  auto table = buildVocabTable(vocab, added);
  if (!table) return table.error();
  t->vocab_ = std::move(table->vocab);
  t->idToToken_ = std::move(table->idToToken);
  const auto unk = t->vocab_.find(options.unkToken);
  if (unk == t->vocab_.end()) {
    return makeError("the unknown token '" + options.unkToken + "' is not in the vocabulary");
  }
  t->unkId_ = unk->second;
  for (const auto& f : framing.prefix) {
    if (f.id < 0) return makeError("special token '" + f.token + "' has no id");
  }
  for (const auto& f : framing.suffix) {
    if (f.id < 0) return makeError("special token '" + f.token + "' has no id");
  }
  t->options_ = std::move(options);
  t->added_ = AddedTokenMatcher(added);
  t->framing_ = std::move(framing);
  t->padId_ = padId;
  return t;
}

int32_t WordPieceTokenizer::tokenToId(std::string_view token) const {
  const auto it = vocab_.find(token);
  return it == vocab_.end() ? -1 : it->second;
}

std::string WordPieceTokenizer::idToToken(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= idToToken_.size()) return {};
  return idToToken_[static_cast<size_t>(id)];
}

void WordPieceTokenizer::encodeWord(const NormalizedWord& word, Encoding& out) const {
  const size_t n = word.chars.size();
  auto span = [&](size_t from, size_t to) {
    const auto [lo, hi] = std::minmax_element(word.origins.begin() + static_cast<ptrdiff_t>(from),
                                              word.origins.begin() + static_cast<ptrdiff_t>(to));
    return std::make_pair(*lo, *hi + 1);
  };
  auto pushUnk = [&] {
    out.ids.push_back(unkId_);
    out.tokens.push_back(options_.unkToken);
    out.offsets.push_back(span(0, n));
  };
  if (n > static_cast<size_t>(options_.maxInputCharsPerWord)) {
    pushUnk();
    return;
  }
  // byteAt[k]: where char k starts in the UTF-8 form of the word.
  std::string utf8;
  std::vector<size_t> byteAt(n + 1);
  for (size_t k = 0; k < n; ++k) {
    byteAt[k] = utf8.size();
    appendUtf8(word.chars[k], utf8);
  }
  byteAt[n] = utf8.size();

  const size_t firstNew = out.ids.size();
  std::string candidate;
  size_t start = 0;
  while (start < n) {
    size_t end = n;
    int32_t found = -1;
    while (start < end) {
      candidate.clear();
      if (start > 0) candidate = options_.continuingPrefix;
      candidate.append(utf8, byteAt[start], byteAt[end] - byteAt[start]);
      const auto it = vocab_.find(candidate);
      if (it != vocab_.end()) {
        found = it->second;
        break;
      }
      --end;
    }
    if (found < 0) {
      // One unknown piece makes the whole word [UNK], as in Hugging Face.
      out.ids.resize(firstNew);
      out.tokens.resize(firstNew);
      out.offsets.resize(firstNew);
      pushUnk();
      return;
    }
    out.ids.push_back(found);
    out.tokens.push_back(candidate);
    out.offsets.push_back(span(start, end));
    start = end;
  }
}

Encoding WordPieceTokenizer::encode(std::string_view utf8, bool addSpecial) const {
  Encoding out;
  auto pushFraming = [&](const std::vector<FramingToken>& list) {
    for (const FramingToken& f : list) {
      out.ids.push_back(f.id);
      out.tokens.push_back(f.token);
      out.offsets.emplace_back(0, 0);
    }
  };
  if (addSpecial) pushFraming(framing_.prefix);
  const std::u32string text = decodeUtf8(utf8);
  for (const Segment& seg : added_.split(text)) {
    if (seg.added >= 0) {
      const AddedToken& a = added_.tokens()[static_cast<size_t>(seg.added)];
      out.ids.push_back(a.id);
      out.tokens.push_back(a.content);
      out.offsets.emplace_back(seg.begin, seg.end);
      continue;
    }
    const std::u32string_view part = std::u32string_view(text).substr(
        static_cast<size_t>(seg.begin), static_cast<size_t>(seg.end - seg.begin));
    for (const NormalizedWord& w : bertPreTokenize(part, seg.begin, options_)) encodeWord(w, out);
  }
  if (addSpecial) pushFraming(framing_.suffix);
  return out;
}

}  // namespace attn::text
