// The compressed model format: a Hugging Face-style directory (config.json,
// tokenizer files) whose model.safetensors stores each compressed weight matrix
// as its codes and parameters instead of floats. Matrices are named as the engine
// names them (HF name without the task prefix; GPT-2's fused q/k/v thirds as
// "h.N.attn.c_attn[q].weight"), always [out, in]:
//
//   <prefix><matrix>.qweight    U8 [bytes]     codes, b bits each, LSB-first bit stream
//   <prefix><matrix>.scales     F32 [blocks]   uniform s; binary / ternary α
//   <prefix><matrix>.zeros      U8 [blocks]    uniform asymmetric zero points
//   <prefix><matrix>.codebook   F32 [blocks, 2^b]  k-means levels
//   <prefix><matrix>.exponents  I8 [blocks]    log2 e_max
//   <prefix><matrix>.mask       U8 [⌈n/8⌉]     pruned, not quantized: bitmap of kept
//                                               weights (LSB-first, row-major)
//   <prefix><matrix>.values     F32 [kept]      … and their values
//
// Every other tensor of the source checkpoint is stored unchanged under its own
// name. __metadata__: "format": "attnstudio-compressed", "attnstudio_plan" (the
// plan JSON) and "attnstudio_tensors": JSON {matrix: {"hf_name", "hf_shape",
// "rows", "cols", "encoding": "quantized"|"sparse", and for quantized ones the
// spec: "method", "bits", "granularity", "group", "symmetric"}}. The file's size is
// the codes and parameters (QuantizedTensor::storageBytes) plus the unchanged
// tensors plus the header. Opening it (loadModel) dequantizes on load.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <utility>
#include <vector>

#include "core/compress/plan.h"
#include "core/io/safetensors.h"

namespace attn::compress {

inline constexpr const char* kCompressedFormat = "attnstudio-compressed";

// What the format stores: the tensors in file order and the safetensors metadata.
struct CompressedTensors {
  std::vector<std::pair<std::string, Tensor>> tensors;
  std::map<std::string, std::string> metadata;
};
Result<CompressedTensors> compressedTensors(const Model& source, const AppliedPlan& applied,
                                            const CompressionPlan& plan);

// Writes `dir` atomically (refuses a non-empty one). applied: applyPlan(source, plan).
// beforeCommit: as HfWriteOptions::beforeCommit.
Status writeCompressedModel(const std::filesystem::path& dir, const Model& source,
                            const AppliedPlan& applied, const CompressionPlan& plan,
                            const CancelToken* cancel = nullptr,
                            const std::function<Status()>& beforeCommit = {});

bool isCompressed(const Checkpoint& ck);
// The checkpoint with every compressed matrix decoded back into its Hugging Face
// tensor (dequantized float32), ready for bindWeights. Errors name the tensor.
Result<Checkpoint> decompressCheckpoint(const ModelConfig& config, const Checkpoint& ck);

}  // namespace attn::compress
