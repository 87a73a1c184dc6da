// A new model directory with random weights: what pre-training starts from.
#pragma once

#include <filesystem>
#include <string>

#include "core/util/result.h"

namespace attn::distill {

// Writes `dir` (atomically; refuses a non-empty one): config.json as given
// (a Hugging Face config of a supported architecture), the tokenizer files found
// in `tokenizerDir` (vocab.txt, tokenizer_config.json, vocab.json, merges.txt,
// tokenizer.json, special_tokens_map.json) and model.safetensors with weights
// initialised as transformers does (N(0, 0.02), zero biases, LayerNorm 1 / 0),
// deterministic for the seed. Tensor names are the base model's (no task prefix).
Status writeInitialModel(const std::filesystem::path& dir, const std::string& configJson,
                         const std::filesystem::path& tokenizerDir, uint64_t seed);

}  // namespace attn::distill
