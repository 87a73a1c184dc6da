// GPT-2 style byte-level BPE: the text is split by GPT-2's pre-tokenization
// pattern, each piece's UTF-8 bytes are mapped to printable characters
// (bytes_to_unicode) and merged pairwise by merge rank.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/text/special_tokens.h"
#include "core/text/tokenizer.h"
#include "core/util/result.h"

namespace attn::text {

struct BpeOptions {
  bool addPrefixSpace = false;  // ByteLevel add_prefix_space: " " before each text part
  bool useRegex = true;         // split with the GPT-2 pattern before merging
  bool trimOffsets = false;     // offsets leave out leading/trailing spaces (RoBERTa)
  bool ignoreMerges = false;    // a piece found whole in the vocabulary is one token
  std::string unkToken;         // empty: bytes absent from the vocabulary are dropped
};

// bytes_to_unicode(): byte b is written as this code point in vocab and merges.
const std::array<char32_t, 256>& byteToUnicode();

// [begin, end) code point ranges matched by
// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
std::vector<std::pair<int32_t, int32_t>> gpt2PreTokenize(std::u32string_view text);

class BpeTokenizer final : public Tokenizer {
 public:
  // merges in rank order; each pair and its concatenation must be in the vocabulary.
  static Result<std::shared_ptr<BpeTokenizer>> create(
      const std::vector<std::pair<std::string, int32_t>>& vocab,
      const std::vector<std::pair<std::string, std::string>>& merges, BpeOptions options,
      std::vector<AddedToken> added, Framing framing, int32_t padId);

  std::string kind() const override { return "bpe"; }
  Encoding encode(std::string_view utf8, bool addSpecial = true) const override;
  int32_t vocabSize() const override { return static_cast<int32_t>(idToToken_.size()); }
  int32_t tokenToId(std::string_view token) const override;
  std::string idToToken(int32_t id) const override;
  int32_t padId() const override { return padId_; }

  const BpeOptions& options() const { return options_; }
  const Framing& framing() const { return framing_; }

 private:
  struct Piece {
    int32_t id;
    uint32_t byteBegin;  // within the pre-tokenized piece
    uint32_t byteEnd;
  };
  struct Merge {
    int32_t rank;
    int32_t id;  // of the merged token
  };

  BpeTokenizer() = default;
  std::vector<Piece> mergeBytes(std::string_view bytes) const;
  std::vector<Piece> cachedMerge(const std::string& bytes) const;

  BpeOptions options_;
  Vocab vocab_;
  std::vector<std::string> idToToken_;
  std::unordered_map<uint64_t, Merge> merges_;
  std::array<int32_t, 256> byteId_{};  // id of each byte's one-character token, -1 if absent
  AddedTokenMatcher added_;
  Framing framing_;
  int32_t unkId_ = -1;
  int32_t padId_ = -1;

  // encode() is const and may run on several threads; the cache is guarded.
  mutable std::mutex cacheMutex_;
  mutable std::unordered_map<std::string, std::vector<Piece>> cache_;
};

}  // namespace attn::text
