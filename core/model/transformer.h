// Forward pass with attention capture for every supported architecture.
// Legend: L = layers, H = heads, S = sequence length, D = hidden, Dh = D / H.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "core/model/config.h"
#include "core/model/weights.h"
#include "core/util/parallel.h"
#include "core/util/result.h"

namespace attn {

struct ForwardResult;

struct ForwardOptions {
  bool captureScores = false;   // scaled pre-softmax scores, before masking
  bool captureContext = false;  // per-head context vectors P·V
  bool captureHidden = false;   // hidden states as Hugging Face returns them
  bool captureFfnInputs = false;  // the state entering each layer's feed-forward block
  ThreadPool* pool = nullptr;   // nullptr: run on the calling thread only
  const CancelToken* cancel = nullptr;
  std::function<void(int layersDone, int layers)> progress;
  // Applied to each head's attention probabilities p: [S, S] right after the
  // softmax and before P·V, so later layers see the change (attention
  // quantization or sparsification); the returned attention is the transformed
  // one. Called concurrently for different heads; must be thread-safe.
  std::function<void(int layer, int head, float* p, int seq)> attentionTransform;
  // Resume from `resume`, an earlier result for the same ids and mask that
  // captured its hidden states: layers 0 … resumeLayer−1 are taken over from it
  // as they are (attention, and scores / context / hidden states when asked for
  // and captured there), and the pass starts at layer resumeLayer (1 … L−1) from
  // its hidden state. The result equals the full pass bit for bit when those
  // layers' weights, the embeddings and the attentionTransform are the ones that
  // run used; what changed (a weight of layer resumeLayer or later) is recomputed.
  const ForwardResult* resume = nullptr;
  int resumeLayer = 0;
  // With resume: layer resumeLayer's attention block is taken over too (its maps,
  // and scores / context when asked for), and the pass starts at that layer's
  // feed-forward block (resumeLayer 0 … L−1) from the state `resume` captured
  // there (captureFfnInputs). The same result as the full pass when, in addition,
  // that layer's attention weights (q, k, v, o and the norm of its block) and its
  // attention transform are the ones that run used (at layer 0: the embeddings too).
  bool resumeAtFfn = false;
};

// Float buffers of a forward result, aligned as Eigen aligns its own: Eigen's vectorised
// reductions peel a different number of leading elements depending on the
// alignment, so an aligned base keeps results bit-identical from run to run.
using FloatBuffer = std::vector<float, Eigen::aligned_allocator<float>>;

struct ForwardResult {
  int layers = 0, heads = 0, seq = 0, hidden = 0, headDim = 0;
  FloatBuffer attention;  // [L, H, S, S] post-softmax probabilities
  FloatBuffer scores;     // [L, H, S, S] when captured
  FloatBuffer context;    // [L, H, S, Dh] when captured
  // [L+1, S, D] when captured. BERT-likes: [LN(embeddings), layer 1 … L];
  // GPT-2: [embeddings, block 1 … L−1, ln_f(block L)].
  FloatBuffer hiddenStates;
  // [L, S, D] when captured: what enters each layer's feed-forward block (the
  // residual stream after the attention block; post-LN: after its LayerNorm).
  FloatBuffer ffnInputs;
  FloatBuffer lastHidden;  // [S, D] final output, always kept

  const float* attentionMap(int layer, int head) const {  // [S, S]
    return attention.data() + (static_cast<size_t>(layer) * heads + head) * seq * seq;
  }
};

// ids: [S] token ids; mask: [S] 1 = attend, 0 = padding (empty: all ones).
Result<ForwardResult> forward(const ModelConfig& config, const ModelWeights& weights,
                              std::span<const int32_t> ids, std::span<const int32_t> mask,
                              const ForwardOptions& options = {});

// Position ids the model uses for `ids` ([S]); RoBERTa counts from pad + 1.
std::vector<int32_t> positionIds(const ModelConfig& config, std::span<const int32_t> ids);

}  // namespace attn
