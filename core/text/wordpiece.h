// BERT's tokenizer: Hugging Face BasicTokenizer (clean text, pad CJK ideographs,
// lowercase, strip accents, split on whitespace and punctuation) followed by
// WordpieceTokenizer (greedy longest-match-first with "##" continuations).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/text/special_tokens.h"
#include "core/text/tokenizer.h"
#include "core/util/result.h"

namespace attn::text {

struct WordPieceOptions {
  bool cleanText = true;           // drop U+0000, U+FFFD and C* chars; whitespace -> ' '
  bool handleChineseChars = true;  // every CJK ideograph is a word of its own
  bool lowercase = true;
  bool stripAccents = true;  // NFD, then drop Mn
  std::string unkToken = "[UNK]";
  std::string continuingPrefix = "##";
  int32_t maxInputCharsPerWord = 100;
};

// The BasicTokenizer half: normalised characters of one word, each knowing the
// index of the input code point it came from.
struct NormalizedWord {
  std::u32string chars;
  std::vector<int32_t> origins;
};
std::vector<NormalizedWord> bertPreTokenize(std::u32string_view text, int32_t originBase,
                                            const WordPieceOptions& options);

class WordPieceTokenizer final : public Tokenizer {
 public:
  // vocab lists (token, id); ids need not be dense. Fails on an empty vocabulary,
  // a missing unk token or ids out of range.
  static Result<std::shared_ptr<WordPieceTokenizer>> create(
      const std::vector<std::pair<std::string, int32_t>>& vocab, WordPieceOptions options,
      std::vector<AddedToken> added, Framing framing, int32_t padId);

  std::string kind() const override { return "wordpiece"; }
  Encoding encode(std::string_view utf8, bool addSpecial = true) const override;
  int32_t vocabSize() const override { return static_cast<int32_t>(idToToken_.size()); }
  int32_t tokenToId(std::string_view token) const override;
  std::string idToToken(int32_t id) const override;
  int32_t padId() const override { return padId_; }

  const WordPieceOptions& options() const { return options_; }
  const Framing& framing() const { return framing_; }

 private:
  WordPieceTokenizer() = default;
  void encodeWord(const NormalizedWord& word, Encoding& out) const;

  WordPieceOptions options_;
  Vocab vocab_;
  std::vector<std::string> idToToken_;
  AddedTokenMatcher added_;
  Framing framing_;
  int32_t unkId_ = -1;
  int32_t padId_ = -1;
};

}  // namespace attn::text
