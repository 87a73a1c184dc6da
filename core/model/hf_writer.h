// Writing a model back as a Hugging Face directory that loads wherever such
// checkpoints load (transformers, this engine):
//   config.json and tokenizer files   copied from the source model's directory
//   model.safetensors                 every tensor of the source checkpoint under its
//                                     own name: the given (e.g. quantized, then
//                                     dequantized) weights in float32 where the engine
//                                     holds them, all others (pooler, task heads, tied
//                                     copies, buffers) unchanged
// The directory is built as "<dir>.partial-XXXXXX" beside the target and renamed
// at the end, so a failed write leaves nothing; an existing non-empty target is
// refused; the source directory is never written.
#pragma once

#include <filesystem>

#include "core/model/model.h"

namespace attn {

Status writeHfModel(const std::filesystem::path& dir, const Model& source,
                    const ModelWeights& weights);

}  // namespace attn
