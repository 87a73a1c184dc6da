// Training a GPT-2 style byte-level BPE tokenizer on a corpus, written in the
// Hugging Face file format (vocab.json + merges.txt) that BpeTokenizer and
// transformers' GPT2Tokenizer read.
//
// Pieces come from GPT-2's pre-tokenization pattern; each piece's UTF-8 bytes
// start as the 256 byte symbols (ids 0–255, in bytes_to_unicode order of the
// byte value). Each round merges the most frequent adjacent pair over all
// pieces (weighted by piece counts); ties go to the pair whose merged string
// sorts first, so the result is deterministic. The end-of-text token gets the
// last id.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "core/util/result.h"

namespace attn::text {

struct BpeTrainResult {
  int vocabSize = 0;
  int merges = 0;
};

// Writes dir/vocab.json, dir/merges.txt and dir/tokenizer_config.json
// (atomically per file). vocabSize ≥ 257 (bytes + end-of-text).
Result<BpeTrainResult> trainByteLevelBpe(const std::vector<std::string>& texts, int vocabSize,
                                         const std::string& endOfText,
                                         const std::filesystem::path& dir);

}  // namespace attn::text
