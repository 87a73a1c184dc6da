#include "core/distill/ops.h"

#include "core/kernels/gemm.h"
#include "core/model/layer_norm.h"
#include "core/model/softmax.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <unsupported/Eigen/SpecialFunctions>

namespace attn::distill {

namespace {
using ConstMap = Eigen::Map<const Mat>;
using Strided = Eigen::Map<const Mat, 0, Eigen::OuterStride<>>;
using StridedMut = Eigen::Map<Mat, 0, Eigen::OuterStride<>>;
}  // namespace

// The products run on the engine's packed GEMM (core/kernels), single-threaded:
// the trainer parallelises over chunks of the batch.
void linearForward(const float* w, const float* b, int out, int in, const Mat& x, Mat& y) {
  y.resize(x.rows(), out);
  GemmArgs g;
  g.m = x.rows();
  g.n = out;
  g.k = in;
  g.x = x.data();
  g.w = w;
  g.bias = b;
  g.y = y.data();
  linearFast(g, nullptr);
}

void linearBackward(const float* w, int out, int in, const Mat& x, const Mat& dy, Mat* dx,
                    float* dw, float* db) {
  if (dx != nullptr) {  // dx = dy · W: W [out, in] is the [K, N] ("in, out") layout
    dx->resize(dy.rows(), in);
    GemmArgs g;
    g.m = dy.rows();
    g.n = in;
    g.k = out;
    g.x = dy.data();
    g.w = w;
    g.inOut = true;
    g.y = dx->data();
    linearFast(g, nullptr);
  }
  // dW += dyᵀ · x: [out, rows] · [rows, in], x being the [K, N] operand.
  const Mat dyT = dy.transpose();
  Mat prod(out, in);
  GemmArgs g;
  g.m = out;
  g.n = in;
  g.k = dy.rows();
  g.x = dyT.data();
  g.w = x.data();
  g.inOut = true;
  g.y = prod.data();
  linearFast(g, nullptr);
  Eigen::Map<Mat>(dw, out, in) += prod;
  if (db != nullptr) Eigen::Map<Eigen::RowVectorXf>(db, out) += dy.colwise().sum();
}

void layerNormForward(const float* gamma, const float* beta, float eps, const Mat& x, Mat& y,
                      NormCache& c) {
  const int64_t rows = x.rows(), d = x.cols();
  y.resize(rows, d);
  c.xhat.resize(rows, d);
  c.inv.resize(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    const float* in = x.data() + r * d;
    const RowStats st = layerNormStats(in, d, eps);
    c.inv[r] = static_cast<float>(st.inv);
    float* xh = c.xhat.data() + r * d;
    float* out = y.data() + r * d;
    for (int64_t i = 0; i < d; ++i) {
      xh[i] = static_cast<float>((in[i] - st.mean) * st.inv);
      out[i] = xh[i] * gamma[i] + beta[i];
    }
  }
}

void layerNormBackward(const float* gamma, const NormCache& c, const Mat& dy, Mat& dx,
                       float* dgamma, float* dbeta) {
  const int64_t rows = dy.rows(), d = dy.cols();
  dx.resize(rows, d);
  std::vector<float> dxh(static_cast<size_t>(d));
  for (int64_t r = 0; r < rows; ++r) {
    const float* g = dy.data() + r * d;
    const float* xh = c.xhat.data() + r * d;
    double m1 = 0.0, m2 = 0.0;
    for (int64_t i = 0; i < d; ++i) {
      dgamma[i] += g[i] * xh[i];
      dbeta[i] += g[i];
      dxh[i] = g[i] * gamma[i];
      m1 += dxh[i];
      m2 += static_cast<double>(dxh[i]) * xh[i];
    }
    m1 /= static_cast<double>(d);
    m2 /= static_cast<double>(d);
    float* out = dx.data() + r * d;
    for (int64_t i = 0; i < d; ++i)
      out[i] = static_cast<float>(c.inv[r] * (dxh[i] - m1 - xh[i] * m2));
  }
}

void activationForward(Activation a, const Mat& pre, Mat& out) {
  out.resize(pre.rows(), pre.cols());
  const auto x = pre.array();
  switch (a) {
    case Activation::GeluErf:
      out.array() = 0.5f * x * (1.0f + (x * static_cast<float>(M_SQRT1_2)).erf());
      break;
    case Activation::GeluTanh: {
      const float k = 0.7978845608028654f;
      out.array() = 0.5f * x * (1.0f + (k * (x + 0.044715f * x.cube())).tanh());
      break;
    }
    case Activation::Relu:
      out.array() = x.max(0.0f);
      break;
  }
}

void activationBackward(Activation a, const Mat& pre, const Mat& dout, Mat& dpre) {
  dpre.resize(pre.rows(), pre.cols());
  const auto x = pre.array();
  switch (a) {
    case Activation::GeluErf: {  // Φ(x) + x φ(x)
      const float invSqrt2Pi = 0.3989422804014327f;
      dpre.array() = dout.array() * (0.5f * (1.0f + (x * static_cast<float>(M_SQRT1_2)).erf()) +
                                     x * invSqrt2Pi * (-0.5f * x.square()).exp());
      break;
    }
    case Activation::GeluTanh: {
      const float k = 0.7978845608028654f;
      const auto t = (k * (x + 0.044715f * x.cube())).tanh();
      dpre.array() = dout.array() * (0.5f * (1.0f + t) + 0.5f * x * (1.0f - t.square()) * k *
                                                             (1.0f + 3.0f * 0.044715f * x.square()));
      break;
    }
    case Activation::Relu:
      dpre.array() = dout.array() * (x > 0.0f).cast<float>();
      break;
  }
}

void maskedSoftmaxRow(float* row, int seq, const int32_t* keyMask, int visible) {
  constexpr float kHidden = -std::numeric_limits<float>::infinity();
  bool any = false;
  for (int j = 0; j < seq; ++j) {
    const bool shown = j < visible && keyMask[j] != 0;
    any = any || shown;
    if (!shown) row[j] = kHidden;
  }
  Eigen::Map<Eigen::ArrayXf> a(row, seq);
  if (!any) {  // nothing visible: a uniform row, as transformers gives
    a.setConstant(1.0f / static_cast<float>(seq));
    return;
  }
  a -= a.maxCoeff();
  expShiftedRow(row, seq);  // hidden keys: −inf, whose exp is exactly 0
  a *= 1.0f / a.sum();
}

void softmaxBackwardRow(const float* p, const float* dp, float* ds, int seq) {
  float dot = 0.0f;
  for (int j = 0; j < seq; ++j) dot += dp[j] * p[j];
  for (int j = 0; j < seq; ++j) ds[j] = p[j] * (dp[j] - dot);
}

void attentionForward(const AttentionShape& s, const Mat& q, const Mat& k, const Mat& v,
                      const int32_t* mask, float* p, Mat& ctx) {
  const int S = s.seq, Dh = s.headDim, D = s.heads * s.headDim;
  const float scale = 1.0f / std::sqrt(static_cast<float>(Dh));
  ctx.resize(static_cast<Eigen::Index>(s.n) * S, D);
  for (int b = 0; b < s.n; ++b)
    for (int h = 0; h < s.heads; ++h) {
      const int64_t r0 = static_cast<int64_t>(b) * S;
      const Strided qh(q.data() + r0 * D + h * Dh, S, Dh, Eigen::OuterStride<>(D));
      const Strided kh(k.data() + r0 * D + h * Dh, S, Dh, Eigen::OuterStride<>(D));
      const Strided vh(v.data() + r0 * D + h * Dh, S, Dh, Eigen::OuterStride<>(D));
      Eigen::Map<Mat> P(p + (static_cast<size_t>(b) * s.heads + h) * S * S, S, S);
      P.noalias() = qh * kh.transpose();
      P *= scale;
      for (int i = 0; i < S; ++i)
        maskedSoftmaxRow(P.data() + static_cast<size_t>(i) * S, S, mask + r0, s.causal ? i + 1 : S);
      StridedMut(ctx.data() + r0 * D + h * Dh, S, Dh, Eigen::OuterStride<>(D)).noalias() = P * vh;
    }
}

void attentionBackward(const AttentionShape& s, const Mat& q, const Mat& k, const Mat& v,
                       const float* p, const Mat& dctx, const float* dpExtra, Mat& dq, Mat& dk,
                       Mat& dv) {
  const int S = s.seq, Dh = s.headDim, D = s.heads * s.headDim;
  const float scale = 1.0f / std::sqrt(static_cast<float>(Dh));
  dq.resize(q.rows(), D);
  dk.resize(k.rows(), D);
  dv.resize(v.rows(), D);
  Mat dP(S, S), dS(S, S);
  for (int b = 0; b < s.n; ++b)
    for (int h = 0; h < s.heads; ++h) {
      const int64_t r0 = static_cast<int64_t>(b) * S, off = r0 * D + h * Dh;
      const Eigen::OuterStride<> st(D);
      const Strided qh(q.data() + off, S, Dh, st), kh(k.data() + off, S, Dh, st),
          vh(v.data() + off, S, Dh, st), dch(dctx.data() + off, S, Dh, st);
      const size_t at = (static_cast<size_t>(b) * s.heads + h) * S * S;
      const Eigen::Map<const Mat> P(p + at, S, S);
      dP.noalias() = dch * vh.transpose();
      if (dpExtra != nullptr) dP += Eigen::Map<const Mat>(dpExtra + at, S, S);
      StridedMut(dv.data() + off, S, Dh, st).noalias() = P.transpose() * dch;
      for (int i = 0; i < S; ++i)
        softmaxBackwardRow(P.data() + static_cast<size_t>(i) * S, dP.data() + static_cast<size_t>(i) * S,
                           dS.data() + static_cast<size_t>(i) * S, S);
      dS *= scale;
      StridedMut(dq.data() + off, S, Dh, st).noalias() = dS * kh;
      StridedMut(dk.data() + off, S, Dh, st).noalias() = dS.transpose() * qh;
    }
}

}  // namespace attn::distill
