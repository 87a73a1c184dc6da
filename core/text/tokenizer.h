// Tokenizers: turn UTF-8 text into token ids exactly as the Hugging Face
// tokenizer of the checkpoint does (WordPiece for BERT-likes, byte-level BPE for
// GPT-2 / RoBERTa), keeping each token's string and character offsets.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/util/result.h"

namespace attn::text {

struct Encoding {
  std::vector<int32_t> ids;
  std::vector<std::string> tokens;  // vocabulary strings, e.g. "##ing", "Ġworld"
  // [begin, end) in Unicode code points of the input text; special tokens that
  // were added by the post-processor get {0, 0} (as Hugging Face reports them).
  std::vector<std::pair<int32_t, int32_t>> offsets;
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // "wordpiece" or "bpe"
  virtual std::string kind() const = 0;
  // addSpecial: add the post-processor's tokens ([CLS] … [SEP], <s> … </s>).
  virtual Encoding encode(std::string_view utf8, bool addSpecial = true) const = 0;
  virtual int32_t vocabSize() const = 0;
  virtual int32_t tokenToId(std::string_view token) const = 0;  // -1 when absent
  virtual std::string idToToken(int32_t id) const = 0;          // "" when out of range
  // Id used for padding, -1 when the tokenizer has none (GPT-2).
  virtual int32_t padId() const = 0;
};

// Hint from the model's architecture, used when the tokenizer files do not say
// which special tokens frame a sequence (vocab.json + merges.txt carry no
// post-processor): "bert" / "distilbert" -> [CLS] … [SEP], "roberta" -> <s> … </s>,
// "gpt2" -> none.
struct TokenizerHint {
  std::string architecture;
};

// Loads the tokenizer stored in a model directory. Looks, in this order, for
// tokenizer.json, vocab.txt (+ tokenizer_config.json do_lower_case),
// vocab.json + merges.txt. Returns nullptr inside an ok Result when the directory
// has no tokenizer files; an Error when files exist but are malformed.
Result<std::shared_ptr<const Tokenizer>> loadTokenizer(const std::filesystem::path& dir,
                                                       const TokenizerHint& hint);
// The same from files held in memory (file name → contents), e.g. the /tokenizer
// group of an HDF5 model; `origin` names them in error messages.
Result<std::shared_ptr<const Tokenizer>> loadTokenizer(
    const std::map<std::string, std::string>& files, const std::string& origin,
    const TokenizerHint& hint);

}  // namespace attn::text
