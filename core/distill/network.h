// A model's parameters in one flat float vector, with the forward pass that keeps
// what the backward pass needs and the backward pass itself. Every architecture the
// engine loads (BERT, RoBERTa, DistilBERT post-LN; GPT-2 pre-LN, causal) trains
// through the same code: GPT-2's fused c_attn is split into q, k, v and its Conv1D
// weights are transposed to [out, in] on the way in, and back on the way out.
// Legend: n examples of S tokens, N = n·S rows, L layers, H heads, D hidden, V vocabulary.
#pragma once

#include <cstdint>
#include <vector>

#include "core/distill/ops.h"
#include "core/model/model.h"
#include "core/model/transformer.h"
#include "core/util/result.h"

namespace attn::distill {

struct LinearSlot {
  size_t w = 0, b = 0;  // offsets of W [out, in] and b [out]
  int out = 0, in = 0;
};
struct NormSlot {
  size_t gamma = 0, beta = 0;
};
struct LayerSlots {
  LinearSlot q, k, v, o, ffnIn, ffnOut;
  NormSlot attnNorm, ffnNorm;  // as LayerWeights names them
};
// A run of parameters and whether AdamW's weight decay applies to it
// (matrices and embeddings yes; biases and LayerNorm no).
struct Segment {
  size_t offset = 0, size = 0;
  bool decay = true;
};

struct Layout {
  size_t wordEmb = 0, posEmb = 0, typeEmb = 0;  // [V, D], [P, D], [T, D] (T may be 0)
  int typeRows = 0;
  NormSlot embNorm, finalNorm;  // post-LN / pre-LN models respectively
  std::vector<LayerSlots> layers;
  std::vector<Segment> segments;
  size_t size = 0;
};

using Buffer = FloatBuffer;

struct Network {
  ModelConfig config;
  Layout layout;
  Buffer params;
  float* at(size_t offset) { return params.data() + offset; }
  const float* at(size_t offset) const { return params.data() + offset; }
};

// The layout for a config (no values).
Layout makeLayout(const ModelConfig& config);
// Copies a model's weights into a network.
Result<Network> networkFromWeights(const ModelConfig& config, const ModelWeights& weights);
// Random initialisation as transformers does it: N(0, 0.02) matrices and
// embeddings, zero biases, LayerNorm γ = 1, β = 0. Deterministic for a seed.
Network randomNetwork(const ModelConfig& config, uint64_t seed);
// The network's values as engine weights laid out like the architecture stores
// them (GPT-2: fused c_attn, Conv1D [in, out]); tensors own their memory.
ModelWeights networkWeights(const Network& net);

// What the forward pass keeps for the backward pass.
struct LayerActivations {
  Mat in;                // [N, D] layer input
  Mat normed1, normed2;  // pre-LN: LN1(in), LN2(r1)
  NormCache norm1, norm2;
  Mat q, k, v;  // [N, D]
  Buffer p;     // [n, H, S, S] attention probabilities
  Mat ctx;      // [N, D]
  Mat r1;       // post-LN: LN1(in + O); pre-LN: in + O
  Mat pre, act;  // [N, F] FFN pre-activation and activation
  Mat out;      // [N, D] layer output
};

struct Activations {
  int n = 0, seq = 0;
  std::vector<int32_t> ids, mask, positions;  // [N]
  Mat embeddings;  // [N, D] word + position + type
  NormCache embNorm;
  std::vector<LayerActivations> layers;
  NormCache finalNorm;
  Mat final;  // [N, D] last hidden state (GPT-2: after ln_f)
  // Hidden state after layer l as transformers' hidden_states[l + 1] gives it.
  const Mat& hidden(int l) const {
    return l + 1 == static_cast<int>(layers.size()) ? final : layers[l].out;
  }
  const float* attention(int layer, int example, int head, int heads) const {
    return layers[layer].p.data() +
           (static_cast<size_t>(example) * heads + head) * seq * seq;
  }
};

// ids, mask: [n·S]; padding positions have mask 0 (their ids must still be valid).
Status networkForward(const Network& net, const int32_t* ids, const int32_t* mask, int n, int seq,
                      Activations& a);

// Gradients of a loss with respect to the activations (empty = none).
struct ActivationGrads {
  std::vector<Buffer> attention;                // per layer [n, H, S, S]
  std::vector<Mat> q, k, v;                    // per layer [N, D]
  std::vector<Mat> hidden;                      // per layer, w.r.t. hidden(l)
  void resize(int layers) {
    attention.assign(layers, {});
    q.assign(layers, {});
    k.assign(layers, {});
    v.assign(layers, {});
    hidden.assign(layers, {});
  }
};

// Accumulates d(loss)/d(params) into grad ([layout.size]).
void networkBackward(const Network& net, const Activations& a, const ActivationGrads& g,
                     float* grad);

// Tied LM head (GPT-2): logits = final · Word_embᵀ, [N, V].
void lmLogits(const Network& net, const Activations& a, Mat& logits);
// d(final) from d(logits), and d(Word_emb) += dlogitsᵀ · final.
void lmLogitsBackward(const Network& net, const Activations& a, const Mat& dlogits, Mat& dfinal,
                      float* grad);

}  // namespace attn::distill
