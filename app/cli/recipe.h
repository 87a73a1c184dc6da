// --emit-recipe: the distillation run as a PyTorch script (app/cli/recipe/train.py,
// embedded at build time) plus its JSON configuration and the tokenized corpus,
// runnable with torchrun on many GPUs or nodes.
#pragma once

#include <string>

#include "core/distill/trainer.h"

namespace attn::cli {

struct RecipeInputs {
  std::string teacher, student;  // model directories (teacher empty: LM training)
  const distill::TokenizedCorpus& corpus;
  const distill::TrainOptions& options;
  uint64_t seed = 0;
  const distill::Trainer* trainer = nullptr;  // for the initial projections
};

// Writes DIR/train.py, DIR/config.json, DIR/corpus_ids.jsonl (and
// DIR/projections.safetensors when hidden states are projected). Refuses
// settings the script does not implement (QAT with k-means, log2 or clipping).
Status writeRecipe(const std::string& dir, const RecipeInputs& in);

}  // namespace attn::cli
