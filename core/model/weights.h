// One internal layer structure for every architecture; adapters map each
// checkpoint's tensor names onto it and check shapes against the config.
// Legend: D = hidden, F = FFN size, V = vocabulary, P = max positions.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/io/safetensors.h"
#include "core/model/config.h"
#include "core/tensor/tensor.h"
#include "core/util/parallel.h"

namespace attn {

// y = x · Wᵀ + b. w: [out, in] (nn.Linear) or [in, out] when inOut (GPT-2 Conv1D).
struct Linear {
  Tensor w;  // F32
  Tensor b;  // F32 [out]
  bool inOut = false;
  int in = 0, out = 0;
};

struct Norm {
  Tensor gamma;  // F32 [D]
  Tensor beta;   // F32 [D]
};

struct LayerWeights {
  Linear q, k, v;  // [D, D] each (BERT-likes)
  Linear qkv;      // [D, 3D] fused (GPT-2 c_attn), empty otherwise
  Linear o;        // attention output projection
  Norm attnNorm;   // post-LN: after attention (BERT); pre-LN: ln_1 (GPT-2)
  Norm ffnNorm;    // post-LN: after FFN; pre-LN: ln_2
  Linear ffnIn;    // [F, D]
  Linear ffnOut;   // [D, F]
  bool fusedQkv() const { return !qkv.w.empty(); }
};

struct ModelWeights {
  Tensor wordEmb;  // [V, D]
  Tensor posEmb;   // [P, D]
  Tensor typeEmb;  // [types, D], empty when the model has none
  Norm embNorm;    // BERT-likes; empty for GPT-2
  Norm finalNorm;  // GPT-2 ln_f; empty for BERT-likes
  std::vector<LayerWeights> layers;
};

// Progress and cancellation of a model load. progress(f) is called after
// each bound tensor with f in [0, 1] (bytes of the checkpoint bound so far),
// from the loading thread; a cancelled load returns the error "cancelled".
struct LoadOptions {
  std::function<void(double)> progress;
  const CancelToken* cancel = nullptr;
};

// Binds the checkpoint's tensors (F16/BF16 upcast to F32, F32 used in place).
// Warnings (NaN/Inf values) are appended to `warnings`.
Result<ModelWeights> bindWeights(const ModelConfig& config, const Checkpoint& ck,
                                 std::vector<std::string>& warnings,
                                 const LoadOptions& options = {});

// Hugging Face name (no task-head prefix) of a layer's weight matrix; role is
// one of "q", "k", "v", "o", "ffn_in", "ffn_out". GPT-2's q, k and v live in
// one fused tensor: the name is "h.N.attn.c_attn.weight" for all three.
std::string linearWeightName(Architecture arch, int layer, const std::string& role);

// The weights under their Hugging Face names (no task-head prefix; LayerNorm
// parameters as .weight / .bias): the inverse of bindWeights.
std::vector<std::pair<std::string, const Tensor*>> namedWeights(const ModelConfig& config,
                                                                const ModelWeights& weights);
// Where a tensor of `weights` (one of namedWeights' pointers) lives: i for those
// of weights.layers[i], -1 for the embeddings and their norm, layers.size() for
// the others (the final norm).
int weightLayer(const ModelWeights& weights, const Tensor* tensor);

// The first layer whose tensors are not the very ones of `before` (the same
// data, by address: a derived model shares the tensors it did not change), for
// resuming a forward pass (ForwardOptions::resume): 0 when an embedding or the
// final norm differs, layers when nothing does. Weights of different shapes: 0.
int firstChangedLayer(const ModelWeights& before, const ModelWeights& after);
// Whether layer `layer`'s attention block — q, k, v (GPT-2's c_attn), o and the
// LayerNorm of that block (BERT-likes: after it; GPT-2: ln_1 before it) — has the
// very tensors of `before` (by address, as above): when its first changed layer
// differs only in the feed-forward block, a forward pass can resume at that block
// (ForwardOptions::resumeAtFfn). False for a layer either side lacks.
bool sameAttentionBlock(const ModelWeights& before, const ModelWeights& after, int layer);
// Whether the embeddings, their LayerNorm and the final norm are the very tensors
// of `before`: what resuming at layer 0's feed-forward block needs besides its
// attention block (firstChangedLayer gives 0 for a change there too).
bool sameEmbeddings(const ModelWeights& before, const ModelWeights& after);

// Parameter count of a checkpoint: every tensor but non-parameter buffers
// (GPT-2 attn.bias / masked_bias, position_ids), tied copies counted once.
int64_t countParameters(const Checkpoint& ck);

}  // namespace attn
