// Sparsifying a whole model: weight pruning per target group (or global across
// them), removal of whole attention heads, head importance, and the attention
// sparsity plan the pruned model runs with.
//
// Removing head h of layer l zeroes its Q, K and V slices (output rows
// h·Dh … (h+1)·Dh − 1 of the three projections, weights and biases) and the
// matching input columns of the attention output projection. Its scores are
// then 0 (uniform attention) and its context P·V is 0, so its output is zero,
// exactly as if the head were cut out.
#pragma once

#include <array>
#include <functional>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "core/model/model.h"
#include "core/model/targets.h"
#include "core/sparse/attention_sparsity.h"
#include "core/sparse/prune.h"

namespace attn::sparse {

struct ModelPrunePlan {
  // Per target: nullopt leaves it dense. Global specs are pooled: one magnitude
  // threshold over every target whose spec is Global (their sparsity must agree).
  std::array<std::optional<PruneSpec>, kTargetCount> targets;
  std::vector<std::pair<int, int>> heads;  // (layer, head) to remove
  AttentionPlan attention;                 // applied at inference
  bool prunesWeights() const;
};

struct PrunedTensor {
  std::string name;  // HF name (GPT-2 thirds as "h.N.attn.c_attn[q].weight")
  Target target;
  int layer;
  Bitmap mask;
  SparseBytes bytes;
};

struct SparseModel {
  std::shared_ptr<const Model> model;  // masked weights, same config and tokenizer
  std::vector<PrunedTensor> tensors;   // every matrix a spec or a removed head touched
  std::vector<std::pair<int, int>> heads;
  // Over the matrices of the selected targets (and of removed heads): weights and zeros.
  int64_t weights = 0, zeros = 0;
  std::vector<double> layerSparsity;  // [L] over each layer's pruned matrices
  double sparsity() const { return weights > 0 ? double(zeros) / double(weights) : 0.0; }
};

struct SparsifyOptions {
  ThreadPool* pool = nullptr;
  const CancelToken* cancel = nullptr;
  // pruneModel: when set, only the matrices it accepts are pruned (the others keep
  // their values and get no entry); their masks are those of the whole plan. Not
  // with Global specs, whose one threshold needs every matrix of the pool.
  std::function<bool(int layer, Target)> only;
};

// What removing heads does to weights: their Q, K, V rows and bias entries and
// their O input columns become zero (GPT-2: the c_attn thirds' columns, c_proj rows).
Status zeroHeads(const ModelConfig& config, ModelWeights& weights,
                 const std::vector<std::pair<int, int>>& heads);

Result<SparseModel> pruneModel(const Model& base, const ModelPrunePlan& plan,
                               const SparsifyOptions& options = {});

// Head importance, higher = more important, over a set of inputs:
//   entropy     −(mean row entropy): focused heads rank high
//   maxweight   mean over inputs of the largest probability in the map
//   confidence  mean over rows of the row's largest probability (Voita et al., 2019)
//   ablation    1 − mean cosine between the final hidden states with and without
//               the head (its probabilities zeroed, so its output is zero)
enum class Importance { Entropy, MaxWeight, Confidence, Ablation };
Result<Importance> parseImportance(const std::string& text);

struct HeadScores {
  int layers = 0, heads = 0;
  std::vector<double> score;  // [L * H]
  // Heads from least to most important (ties: the lower layer, then head, first).
  std::vector<std::pair<int, int>> ranking() const;
};

Result<HeadScores> headImportance(const Model& model,
                                  const std::vector<std::vector<int32_t>>& inputs, Importance by,
                                  const SparsifyOptions& options = {},
                                  const std::function<void(int done, int total)>& progress = {});

}  // namespace attn::sparse
