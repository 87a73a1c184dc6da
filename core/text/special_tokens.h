// Pieces shared by both tokenizers: tokens matched verbatim in the raw text
// (Hugging Face "added tokens" such as [CLS] or <|endoftext|>) and the tokens a
// post-processor puts around a sequence.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/text/tokenizer.h"
#include "core/text/unicode.h"

namespace attn::text {

// Transparent hashing lets lookups take a string_view without a copy.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using Vocab = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

// Ids are bounded so a corrupt file cannot make an id table allocate gigabytes.
inline constexpr int32_t kMaxTokenId = 1 << 24;

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool lstrip = false;      // swallows whitespace on its left
  bool rstrip = false;      // swallows whitespace on its right
  bool singleWord = false;  // only matches when not glued to a word character
};

// Token -> id and id -> token for a vocabulary plus its added tokens.
struct VocabTable {
  Vocab vocab;
  std::vector<std::string> idToToken;  // "" for ids nothing names
};

// Checks every id is in [0, kMaxTokenId); a repeated token keeps its last id
// (as transformers' load_vocab does); added tokens fill ids and names the
// vocabulary leaves free.
inline Result<VocabTable> buildVocabTable(const std::vector<std::pair<std::string, int32_t>>& vocab,
                                          const std::vector<AddedToken>& added) {
  int32_t maxId = -1;
  for (const auto& [token, id] : vocab) {
    if (id < 0 || id >= kMaxTokenId) {
      return makeError("token '" + token + "' has id " + std::to_string(id) + ", outside [0, " +
                       std::to_string(kMaxTokenId) + ")");
    }
    maxId = std::max(maxId, id);
  }
  for (const AddedToken& a : added) {
    if (a.id < 0 || a.id >= kMaxTokenId) {
      return makeError("added token '" + a.content + "' has id " + std::to_string(a.id));
    }
    maxId = std::max(maxId, a.id);
  }
  VocabTable t;
  t.idToToken.assign(static_cast<size_t>(maxId) + 1, std::string());
  t.vocab.reserve(vocab.size());
  for (const auto& [token, id] : vocab) {
    t.vocab[token] = id;
    t.idToToken[static_cast<size_t>(id)] = token;
  }
  for (const AddedToken& a : added) {
    t.vocab.try_emplace(a.content, a.id);
    if (t.idToToken[static_cast<size_t>(a.id)].empty())
      t.idToToken[static_cast<size_t>(a.id)] = a.content;
  }
  return t;
}

struct FramingToken {
  std::string token;
  int32_t id = -1;
};

// Tokens the post-processor adds around one sequence: [CLS] … [SEP], <s> … </s>.
struct Framing {
  std::vector<FramingToken> prefix;
  std::vector<FramingToken> suffix;
};

// A stretch of the input: plain text to normalise and split, or one added token.
struct Segment {
  int32_t begin = 0;  // code points, [begin, end)
  int32_t end = 0;
  int32_t added = -1;  // index into the AddedToken list, -1 for plain text
};

// Finds added tokens in the raw text, leftmost then longest first, as the
// Hugging Face trie does before any normalisation.
class AddedTokenMatcher {
 public:
  AddedTokenMatcher() = default;
  explicit AddedTokenMatcher(const std::vector<AddedToken>& tokens) : tokens_(tokens) {
    contents_.reserve(tokens_.size());
    for (size_t i = 0; i < tokens_.size(); ++i) {
      contents_.push_back(decodeUtf8(tokens_[i].content));
      if (!contents_.back().empty()) {
        byFirst_[contents_.back().front()].push_back(static_cast<int32_t>(i));
      }
    }
    for (auto& [first, list] : byFirst_) {
      std::stable_sort(list.begin(), list.end(), [&](int32_t a, int32_t b) {
        return contents_[a].size() > contents_[b].size();
      });
    }
  }

  const std::vector<AddedToken>& tokens() const { return tokens_; }

  std::vector<Segment> split(std::u32string_view text) const {
    std::vector<Segment> out;
    const auto n = static_cast<int32_t>(text.size());
    int32_t plainBegin = 0;
    int32_t i = 0;
    while (i < n) {
      const int32_t hit = byFirst_.empty() ? -1 : matchAt(text, i);
      if (hit < 0) {
        ++i;
        continue;
      }
      const AddedToken& tok = tokens_[hit];
      const auto len = static_cast<int32_t>(contents_[hit].size());
      int32_t plainEnd = i;
      if (tok.lstrip) {
        while (plainEnd > plainBegin && isWhiteSpace(text[plainEnd - 1])) --plainEnd;
      }
      if (plainEnd > plainBegin) out.push_back({plainBegin, plainEnd, -1});
      out.push_back({i, i + len, hit});
      i += len;
      if (tok.rstrip) {
        while (i < n && isWhiteSpace(text[i])) ++i;
      }
      plainBegin = i;
    }
    if (n > plainBegin) out.push_back({plainBegin, n, -1});
    return out;
  }

 private:
  static bool isWordChar(char32_t c) { return c == U'_' || isLetter(c) || isNumber(c); }

  int32_t matchAt(std::u32string_view text, int32_t i) const {
    const auto found = byFirst_.find(text[i]);
    if (found == byFirst_.end()) return -1;
    for (int32_t t : found->second) {
      const std::u32string& c = contents_[t];
      if (text.substr(static_cast<size_t>(i)).substr(0, c.size()) != c) continue;
      if (tokens_[t].singleWord) {
        const size_t after = static_cast<size_t>(i) + c.size();
        if (i > 0 && isWordChar(text[i - 1])) continue;
        if (after < text.size() && isWordChar(text[after])) continue;
      }
      return t;
    }
    return -1;
  }

  std::vector<AddedToken> tokens_;
  std::vector<std::u32string> contents_;  // decoded tokens_[i].content
  std::unordered_map<char32_t, std::vector<int32_t>> byFirst_;
};

}  // namespace attn::text
