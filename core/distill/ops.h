// Forward and backward of the operations a student's forward pass is made of,
// on a batch of n examples of S tokens stacked row-wise ([n·S, width] row-major).
// Each backward returns the gradient with respect to its inputs and accumulates
// (+=) parameter gradients; finite-difference checks in tests/core/test_distill.cpp.
// Legend: N = n·S rows, D = hidden, H = heads, Dh = D / H, F = FFN size.
#pragma once

#include <cstdint>
#include <vector>

#include "core/model/config.h"
#include "core/tensor/tensor.h"

namespace attn::distill {

using Mat = RowMatrixXf;

// y = x · Wᵀ + b.  W: [out, in] row-major, b: [out] or nullptr.  x: [N, in]
void linearForward(const float* w, const float* b, int out, int in, const Mat& x, Mat& y);
// dx = dy · W (assigned; skipped when dx is nullptr), dW += dyᵀ · x, db += Σ_rows dy.
void linearBackward(const float* w, int out, int in, const Mat& x, const Mat& dy, Mat* dx,
                    float* dw, float* db);

// Row-wise LayerNorm: y = (x − μ) / √(σ² + eps) · γ + β, statistics in double.
struct NormCache {
  Mat xhat;                 // [N, D]
  std::vector<float> inv;  // [N] 1 / √(σ² + eps)
};
void layerNormForward(const float* gamma, const float* beta, float eps, const Mat& x, Mat& y,
                      NormCache& cache);
// dx = inv · (dx̂ − mean(dx̂) − x̂ · mean(dx̂ ⊙ x̂)) with dx̂ = dy ⊙ γ (assigned);
// dγ += Σ dy ⊙ x̂, dβ += Σ dy.
void layerNormBackward(const float* gamma, const NormCache& cache, const Mat& dy, Mat& dx,
                       float* dgamma, float* dbeta);

// GELU (erf or tanh form) or ReLU, element-wise.
void activationForward(Activation a, const Mat& pre, Mat& out);
void activationBackward(Activation a, const Mat& pre, const Mat& dout, Mat& dpre);

// Scaled dot-product attention per example and head:
//   P = softmax(Q_h K_hᵀ / √Dh) over the keys a query may see (mask[key] != 0, and
//   key ≤ query when causal; others get exactly 0), C_h = P · V_h.
struct AttentionShape {
  int n = 0, seq = 0, heads = 0, headDim = 0;
  bool causal = false;
};
// q, k, v: [N, D]; mask: [n·S] (1 = token); p: [n, H, S, S]; ctx: [N, D]
void attentionForward(const AttentionShape& s, const Mat& q, const Mat& k, const Mat& v,
                      const int32_t* mask, float* p, Mat& ctx);
// dctx: [N, D]; dpExtra: gradient of other terms with respect to P (losses on the
// maps), [n, H, S, S] or nullptr. dq, dk, dv: [N, D], assigned.
void attentionBackward(const AttentionShape& s, const Mat& q, const Mat& k, const Mat& v,
                       const float* p, const Mat& dctx, const float* dpExtra, Mat& dq, Mat& dk,
                       Mat& dv);

// Softmax over the visible keys of one row of scores (in place; hidden → 0).
void maskedSoftmaxRow(float* row, int seq, const int32_t* keyMask, int visible);
// dS = P ⊙ (dP − Σ_j dP_j P_j) for one row.
void softmaxBackwardRow(const float* p, const float* dp, float* ds, int seq);

}  // namespace attn::distill
