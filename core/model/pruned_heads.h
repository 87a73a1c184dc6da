// Checkpoints with pruned heads, as transformers' prune_heads leaves them and
// config.json "pruned_heads" records them: the removed heads' slices are absent
//   BERT / RoBERTa / DistilBERT   Q, K, V weight rows and bias entries; O input columns
//   GPT-2                         c_attn columns of each third and bias entries; c_proj rows
// (the remaining heads keep their order). The engine always holds every head: the
// loader puts pruned heads back as zeros (a zero head adds nothing: its values are
// zero), and the Hugging Face writer cuts removed heads out again.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/io/safetensors.h"
#include "core/model/config.h"

namespace attn {

// Every tensor of `ck` that holds config.prunedHeads' layers' head slices gets them
// back as zeros (tensors already at full size are left as they are). Errors name
// the tensor whose shape fits neither.
Status expandPrunedHeads(const ModelConfig& config, Checkpoint& ck);

// `tensors` (Hugging Face names with `prefix`, full size) with the slices of
// `heads` (layer → original head indices) cut out; any dtype.
Status cutHeads(const ModelConfig& config, const std::string& prefix,
                const std::map<int, std::vector<int>>& heads,
                std::vector<std::pair<std::string, Tensor>>& tensors);

// layer → sorted heads: the union of a config's pruned heads and (layer, head) pairs.
std::map<int, std::vector<int>> mergeHeads(const std::map<int, std::vector<int>>& a,
                                           const std::vector<std::pair<int, int>>& b);

}  // namespace attn
