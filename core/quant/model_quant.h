// Quantizing a whole model: a Spec per tensor group (core/model/targets.h)
// with per-layer overrides, attention probabilities quantized inside the
// forward pass, and a sensitivity scan. The quantized model runs through the
// same forward pass as the original. Weights are quantized as [out, in], so
// "channel" means output channel and groups run along the inputs; for the
// embeddings a channel is one token's row. Biases and LayerNorm parameters stay
// in float32.
#pragma once

#include <array>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/model/model.h"
#include "core/model/targets.h"
#include "core/quant/quantize.h"

namespace attn::quant {

using attn::kTargetCount;
using attn::kTargetNames;
using attn::parseTargets;
using attn::Target;

// Attention probabilities p ∈ [0, 1], quantized after the softmax:
//   uniform b-bit  p̂ = s · round_half_even(p · (1/s)), s = 1/(2^b − 1) (float32)
//   log2 b-bit     p̂ = 2^−k, k = round_half_even(−log2 p) ∈ [0, 2^b − 2]; below
//                  2^−(2^b − 2 + ½) (and p = 0) p̂ = 0 (the code 2^b − 1)
//   binary         p̂ = 1 if p ≥ threshold else 0
// Rows are not renormalised: the next layer sees what such hardware computes.
struct AttentionQuant {
  enum class Kind { None, Uniform, Log2, Binary };
  Kind kind = Kind::None;
  int bits = 8;
  float threshold = 0.1f;
};
Status validate(const AttentionQuant& a);
void quantizeProbabilities(float* p, int64_t n, const AttentionQuant& a);

struct ModelQuantPlan {
  std::array<std::optional<Spec>, kTargetCount> targets;  // nullopt: stays float32
  struct Override {
    int layer;  // -1 for emb
    Target target;
    std::optional<Spec> spec;  // nullopt: this layer's tensor stays float32
  };
  std::vector<Override> overrides;  // later entries win
  AttentionQuant attention;

  std::optional<Spec> specFor(int layer, Target t) const;
  bool quantizesWeights() const;
};

// Edits a plan from text, entries applied in order (later ones win):
//   entries  := entry (";" entry)*
//   entry    := ["layer" N | "layers" A "-" B] targets "=" spec
//   targets  := "all" | target ("," target)*         (q, k, v, o, ffn_in, ffn_out, emb)
//   spec     := "none" | method ":" bits [":" granularity] [":asym"]
//   granularity := "tensor" | "channel" | "group:" G
// Without a layer an entry sets the targets' spec for every layer; with one it
// adds per-layer overrides. Example:
//   "all=uniform:8; ffn_in,ffn_out=uniform:4:group:64; layer 0 q,k=none"
Status applyPlanText(const std::string& text, ModelQuantPlan& plan);
// The text of a spec ("uniform:4:group:64:asym") and of a plan's weight specs
// and overrides (attention settings are not part of the text);
// applyPlanText(planText(p)) on an empty plan gives p's specs back.
std::string specText(const std::optional<Spec>& spec);
std::string planText(const ModelQuantPlan& plan, bool withTargets = true);

struct TensorReport {
  std::string
      name;  // Hugging Face name without prefix, e.g. "encoder.layer.3.attention.self.query.weight"
  Target target;
  int layer;  // -1 for embeddings
  Spec spec;
  ErrorStats stats;
};
// Bits per weight over the reported (quantized) matrices, each weighted by its
// number of weights: codes, scales, zero points, codebooks. 32 when there are none.
double bitsPerQuantizedWeight(const std::vector<TensorReport>& reports);

struct QuantizedModel {
  std::shared_ptr<const Model> model;  // dequantized float32 weights, same config and tokenizer
  std::vector<TensorReport> tensors;
  std::vector<QuantizedTensor> codes;  // parallel to tensors, when asked for
  // Whole model: every weight tensor as float32 before; after, quantized tensors
  // at their storage size and the rest as float32.
  int64_t bytesBefore = 0, bytesAfter = 0;
};

struct QuantizeModelOptions {
  ThreadPool* pool = nullptr;
  const CancelToken* cancel = nullptr;
  bool keepCodes = false;
  int histogramBins = 64;
  // Called once a matrix of the base model has been read and quantized (e.g. to
  // release its mapped pages); GPT-2's fused c_attn after its V third.
  std::function<void(int layer, Target target)> consumed;
  // Called on the quantizing thread with the model being built once every matrix
  // of layers <= upTo is final (weightLayer: -1 the embeddings), last with upTo =
  // config.layers; it may read (and share) those tensors during the call.
  std::function<void(const Model& partial, int upTo)> stored;
};

Result<QuantizedModel> quantizeModel(const Model& base, const ModelQuantPlan& plan,
                                     const QuantizeModelOptions& options = {});

// Forward options that apply the plan's attention quantization (if any).
ForwardOptions withAttentionQuant(ForwardOptions options, const AttentionQuant& a);

// Sensitivity: quantize one layer (all the plan's targets in it) or one target
// (in every layer) at a time, run the input, and measure the damage against the
// float model. Sorted from most to least harmful (by attention KL).
struct Sensitivity {
  std::string label;  // "layer 3" or "ffn_in"
  int layer = -1;     // per-layer entries
  int target = -1;    // per-target entries (Target as int)
  double attentionKl = 0.0, attentionJs = 0.0, hiddenCosine = 1.0;
};
enum class SensitivityBy { Layer, Target };
Result<std::vector<Sensitivity>> sensitivityScan(
    const Model& base, const ModelQuantPlan& plan, std::span<const int32_t> ids, SensitivityBy by,
    const QuantizeModelOptions& options = {},
    const std::function<void(int done, int total)>& progress = {});

}  // namespace attn::quant
