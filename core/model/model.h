// A loaded model: config, checkpoint (kept mapped), bound weights, tokenizer.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/io/safetensors.h"
#include "core/model/config.h"
#include "core/model/transformer.h"
#include "core/model/weights.h"
#include "core/text/tokenizer.h"

namespace attn {

struct Model {
  ModelConfig config;
  Checkpoint checkpoint;  // empty for synthetic models
  ModelWeights weights;
  std::shared_ptr<const text::Tokenizer> tokenizer;  // nullptr when none shipped
  std::vector<std::string> warnings;
  std::filesystem::path source;
  // config.json and tokenizer files (name → contents) when the model came from one
  // file that holds them (HDF5); empty when they sit in the source's directory.
  std::map<std::string, std::string> sideFiles;
  int64_t parameters = 0;
  uint64_t fileBytes = 0;
};

// path: a Hugging Face model directory (config.json + model.safetensors or a
// sharded index), a .safetensors file with config.json beside it, or an HDF5
// model file (core/compress/hdf5_model.h). Compressed models are dequantized.
// options: progress while the weights are bound, and cancellation.
Result<std::shared_ptr<const Model>> loadModel(const std::filesystem::path& path,
                                               const LoadOptions& options = {});

// A model to modify (quantize, prune): the base's config, tokenizer, source and
// weights, whose tensors keep sharing the base's memory until replaced. The
// checkpoint is not carried over (the writers take the base for it).
std::shared_ptr<Model> derivedModel(const Model& base);

// Random weights in memory, sized like a known model: "bert-base"
// (12 × 768, 12 heads, FFN 3072, V 30522) or "gpt2-small" (12 × 768, V 50257).
Result<std::shared_ptr<const Model>> syntheticModel(const std::string& name, uint32_t seed = 1);

}  // namespace attn
