// The compression plan: everything chosen for a student — weight quantization
// (specs per tensor group with per-layer overrides, attention quantization),
// weight pruning (per group or global), removed heads and the attention sparsity
// rule it runs with — saved and loaded as JSON:
//
//   {
//     "format": "attnstudio-compression-plan", "version": 1,
//     "student": "path/of/the/student",                       (informational)
//     "quantization": {
//       "weights": "q,k,v,o,ffn_in,ffn_out=uniform:8:channel; layer 0 q=none",
//                                                  (grammar of core/quant/model_quant.h)
//       "attention": {"method": "none|uniform|log2|binary", "bits": 8, "threshold": 0.1}
//     },
//     "pruning": {
//       "targets": {"ffn_in": {"method": "nm:2:4", "sparsity": 0.5, "norm": 1}, …},
//       "heads": [[layer, head], …]
//     },
//     "attention_sparsity": {
//       "rule": {"kind": "none|threshold|topk|mass", "tau": 0.01, "k": 8, "mass": 0.9,
//                "renormalize": false},
//       "overrides": [{"layer": 0, "head": -1, "rule": {…}}]
//     }
//   }
//
// Applying a plan prunes first (masks, heads), then quantizes the pruned weights.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "core/quant/model_quant.h"
#include "core/sparse/model_sparse.h"

namespace attn::compress {

struct CompressionPlan {
  std::string student;
  quant::ModelQuantPlan quant;
  sparse::ModelPrunePlan prune;  // targets, heads and the attention rule
  bool empty() const;
};

std::string planJson(const CompressionPlan& plan);
// Errors name the file and the key.
Result<CompressionPlan> parsePlanJson(const std::string& text, const std::string& fileName);
Status savePlan(const std::filesystem::path& path, const CompressionPlan& plan);  // atomic
Result<CompressionPlan> loadPlan(const std::filesystem::path& path);

struct AppliedPlan {
  std::shared_ptr<const Model> model;  // the compressed model (float32 weights)
  std::vector<sparse::PrunedTensor> pruned;
  std::vector<quant::TensorReport> quantized;
  // Parallel to `quantized`; shared with the results derived from this one (a
  // re-applied plan keeps the codes of the matrices it did not quantize again).
  std::vector<std::shared_ptr<const quant::QuantizedTensor>> codes;
  int64_t bytesBefore = 0, bytesAfter = 0;
};
// The quantizer's codes as AppliedPlan keeps them.
std::vector<std::shared_ptr<const quant::QuantizedTensor>> sharedCodes(
    std::vector<quant::QuantizedTensor>&& codes);
// releaseSource: drop the resident pages of each source matrix once it is
// quantized (a command-line export that will not read them again soon).
// histograms: the quantizer's error histograms (for plots); the numbers are always there.
// stored: QuantizeModelOptions::stored (the layers final so far, e.g. for a writer
// on another thread); not called when the plan removes heads (they are zeroed after).
Result<AppliedPlan> applyPlan(const Model& base, const CompressionPlan& plan,
                              ThreadPool* pool = nullptr, const CancelToken* cancel = nullptr,
                              bool releaseSource = false, bool histograms = true,
                              const std::function<void(const Model&, int)>& stored = {});
// applyPlan(base, plan) from the result of an earlier plan: only the matrices whose
// quantization spec or whose target's (local) pruning spec changed are pruned and
// quantized again, the rest are taken from `previous`; a change of removed heads or
// of a Global pruning spec, or most matrices changing, applies the whole plan.
// The result equals applyPlan(base, plan, pool, cancel, false, histograms) bit for
// bit. previous: applyPlan(base, previousPlan, …) with the same `histograms`.
Result<AppliedPlan> reapplyPlan(const Model& base, const AppliedPlan& previous,
                                const CompressionPlan& previousPlan, const CompressionPlan& plan,
                                ThreadPool* pool = nullptr, const CancelToken* cancel = nullptr,
                                bool histograms = true);

// Forward options that run the plan's attention quantization and sparsity.
ForwardOptions forwardOptions(const CompressionPlan& plan, ForwardOptions options = {});

}  // namespace attn::compress
