// Sparse attention: dropping attention probabilities inside the forward pass
// (so later layers see the sparse maps), or on already computed maps for a
// quick preview. Legend: S = sequence length; a row is one query's
// distribution over keys.
//
//   threshold τ   entries p < τ become 0 (τ = 0 keeps everything)
//   top-k         each row keeps its k largest entries (ties: the lower key index)
//   mass p        each row keeps the fewest largest entries whose sum reaches p
//                 (ties: the lower key index; p = 1 keeps every non-zero entry)
// With `renormalize`, each row's kept entries are divided by their sum, so rows
// sum to 1 again (a row that kept nothing stays zero). Statistics count only
// the entries that were non-zero in the dense map (a causal model's future keys
// and padded keys are not "dropped").
#pragma once

#include <cstdint>
#include <vector>

#include "core/model/transformer.h"
#include "core/util/result.h"

namespace attn::sparse {

struct AttentionRule {
  enum class Kind { None, Threshold, TopK, Mass };
  Kind kind = Kind::None;
  double tau = 0.01;  // Threshold
  int k = 8;          // TopK
  double mass = 0.9;  // Mass, in (0, 1]
  bool renormalize = false;
};

Status validate(const AttentionRule& r);

// Per-head settings: `all` unless a later override names the head (head = -1:
// every head of the layer).
struct AttentionPlan {
  AttentionRule all;
  struct Override {
    int layer, head;
    AttentionRule rule;
  };
  std::vector<Override> overrides;
  const AttentionRule& ruleFor(int layer, int head) const;
  bool active() const;
};

// Counts of one map (or a sum of maps).
struct SparsityCounts {
  int64_t dense = 0;  // entries that were non-zero
  int64_t kept = 0;   // of those, kept
  double mass = 0.0;  // sum over rows of the kept probability (before renormalising)
  int64_t rows = 0;
  double sparsity() const { return dense > 0 ? 1.0 - double(kept) / double(dense) : 0.0; }
  double retainedMass() const { return rows > 0 ? mass / double(rows) : 1.0; }
  void add(const SparsityCounts& o) {
    dense += o.dense, kept += o.kept, mass += o.mass, rows += o.rows;
  }
};

// Applies the rule to p: [S, S] in place and returns its counts.
SparsityCounts sparsifyMap(float* p, int seq, const AttentionRule& rule);

// Forward options whose attention transform applies the plan to every head
// (after any transform already set, e.g. attention quantization). counts, when
// given and sized [L * H] by the caller with `heads` = H, receives each head's
// counts (written by the forward pass's worker threads, one slot per head).
ForwardOptions withAttentionSparsity(ForwardOptions options, const AttentionPlan& plan,
                                     std::vector<SparsityCounts>* counts = nullptr, int heads = 0);

// The preview: the plan applied to already computed dense maps, without a new
// forward pass (so a layer does not see the sparsity of the layers before it).
struct Preview {
  ForwardResult sparse;                // attention only
  std::vector<SparsityCounts> counts;  // [L * H]
  std::vector<double> kl;              // [L * H] KL(dense ‖ sparse, rows renormalised)
  SparsityCounts total;
  double klMean = 0.0;
};
Preview preview(const ForwardResult& dense, const AttentionPlan& plan, ThreadPool* pool = nullptr);

// The Threshold rule's curve: for each τ of `taus` (ascending), what preview()
// with that rule on every head reports — total.sparsity() and klMean (equal up to
// the order of summation) — in one pass over the maps instead of one per τ.
struct ThresholdPoint {
  double tau = 0.0, sparsity = 0.0, klMean = 0.0;
};
std::vector<ThresholdPoint> thresholdCurve(const ForwardResult& dense, const std::vector<double>& taus,
                                           ThreadPool* pool = nullptr);

}  // namespace attn::sparse
