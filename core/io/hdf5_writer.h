// HDF5 attention dumps (readable with h5py):
//   /attention/layer_N   float32 [H, S, S]   post-softmax probabilities, N from 0
//   /ids                 int32   [S]
//   /tokens              variable-length UTF-8 strings [S]
//   root attributes: architecture (string), layers, heads, seq (int32)
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/util/result.h"

namespace attn {

struct AttentionDump {
  std::string architecture;
  int layers = 0, heads = 0, seq = 0;
  const float* attention = nullptr;  // [L, H, S, S]
  std::vector<int32_t> ids;          // [S]
  std::vector<std::string> tokens;   // [S], may be empty
};

// Atomic: written to a temporary file beside the target, then renamed.
Status writeAttentionHdf5(const std::filesystem::path& path, const AttentionDump& dump);

}  // namespace attn
