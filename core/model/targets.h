// The weight matrices compression works on, by tensor group ("target"), and a
// walker that hands each one over as [out, in] rows and stores the edit back.
//
// Targets and the Hugging Face tensors they cover:
//   q, k, v   attention projections (BERT attention.self.{query,key,value};
//             DistilBERT attention.{q,k,v}_lin; GPT-2 the Q, K, V thirds of c_attn)
//   o         attention output (attention.output.dense, out_lin, c_proj)
//   ffn_in    intermediate.dense, ffn.lin1, mlp.c_fc
//   ffn_out   output.dense, ffn.lin2, mlp.c_proj
//   emb       word, position (and token type) embeddings; a row is one token
// Matrices are [out, in] (GPT-2's Conv1D [in, out] weights are transposed for
// it), so a row is an output channel and columns are inputs. Biases and
// LayerNorm parameters are not targets.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/model/weights.h"
#include "core/util/result.h"

namespace attn {

enum class Target { Q, K, V, O, FfnIn, FfnOut, Emb };
constexpr int kTargetCount = 7;
inline constexpr const char* kTargetNames[kTargetCount] = {"q",      "k",       "v",  "o",
                                                           "ffn_in", "ffn_out", "emb"};

// "q,k,v,o,ffn_in,ffn_out,emb" (any subset, comma-separated) or "all".
Result<std::vector<Target>> parseTargets(const std::string& text);

struct WeightMatrix {
  std::string name;  // HF name; GPT-2's thirds as "h.N.attn.c_attn[q].weight"
  Target target;
  int layer;  // -1 for embeddings
  int64_t rows, cols;
  // Only with editWeightMatrices(..., borrow = true), for a matrix the model keeps
  // as float32 [rows, cols] (not a transposed Conv1D, not a fused third): its
  // values, read in place instead of copied (the vector then arrives empty), and
  // where edit may put the new matrix as a float32 [rows, cols] tensor instead of
  // filling the vector. nullptr otherwise (the vector as usual).
  const float* stored = nullptr;
  Tensor* replacement = nullptr;
};

// For every matrix whose (layer, target) `selected` accepts, in model order
// (embeddings, then layer by layer q, k, v, o, ffn_in, ffn_out): edit(matrix,
// values [rows, cols]) may change the values, which are then stored back into
// `weights` as new float32 tensors (nothing is written when edit returns an
// error, which ends the walk).
Status editWeightMatrices(
    const ModelConfig& config, ModelWeights& weights,
    const std::function<bool(int layer, Target)>& selected,
    const std::function<Status(const WeightMatrix&, std::vector<float>&)>& edit,
    bool store = true,    // false: read only (edit's changes are dropped, `weights` untouched)
    bool values = true,   // false: values arrive empty and edit supplies all rows·cols of them
    bool borrow = false); // true: WeightMatrix::stored/replacement where the layout allows

// Float32 bytes of every weight, bias and norm parameter the engine holds.
int64_t floatBytes(const ModelWeights& weights);

}  // namespace attn
