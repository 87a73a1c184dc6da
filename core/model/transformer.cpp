// Eigen forward pass. Every matrix is row-major [rows, cols]; shapes in comments.
// Linear layers split their output columns over the pool's threads (core/kernels),
// attention splits heads, element-wise steps split rows; Eigen runs single-threaded
// inside each task (EIGEN_DONT_PARALLELIZE), so the caller controls the thread count.
#include "core/model/transformer.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <unsupported/Eigen/SpecialFunctions>

#include "core/kernels/gemm.h"
#include "core/model/layer_norm.h"
#include "core/model/softmax.h"

namespace attn {

namespace {

using Mat = RowMatrixXf;
using MatMap = Eigen::Map<Mat>;

void forChunks(ThreadPool* pool, int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  if (pool != nullptr)
    pool->chunks(n, fn);
  else
    fn(0, n);
}

// y = x · Wᵀ + b.  x: [S, in], y: [S, out]
void linear(const Linear& l, const Mat& x, Mat& y, ThreadPool* pool) {
  y.resize(x.rows(), l.out);
  GemmArgs g;
  g.m = x.rows();
  g.n = l.out;
  g.k = l.in;
  g.x = x.data();
  g.w = l.w.f32();
  g.inOut = l.inOut;
  g.bias = l.b.f32();
  g.y = y.data();
  linearFast(g, pool);
}

// Row-wise LayerNorm with statistics in double. x, y: [S, D]
void layerNorm(const Norm& n, const Mat& x, Mat& y, float eps, ThreadPool* pool) {
  y.resize(x.rows(), x.cols());
  const int64_t d = x.cols();
  const float* g = n.gamma.f32();
  const float* bt = n.beta.f32();
  forChunks(pool, x.rows(), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* in = x.data() + r * d;
      float* out = y.data() + r * d;
      const RowStats st = layerNormStats(in, d, eps);
      for (int64_t i = 0; i < d; ++i)
        out[i] = static_cast<float>((in[i] - st.mean) * st.inv) * g[i] + bt[i];
    }
  });
}

// In place. x: [S, F]
void activate(Mat& x, Activation a, ThreadPool* pool) {
  const int64_t cols = x.cols();
  forChunks(pool, x.rows(), [&](int64_t r0, int64_t r1) {
    Eigen::Map<Eigen::ArrayXf> v(x.data() + r0 * cols, (r1 - r0) * cols);
    switch (a) {
      case Activation::GeluErf:  // 0.5 x (1 + erf(x / √2))
        v = 0.5f * v * (1.0f + (v * static_cast<float>(M_SQRT1_2)).erf());
        break;
      case Activation::GeluTanh: {  // 0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))
        const float k = 0.7978845608028654f;
        v = 0.5f * v * (1.0f + (k * (v + 0.044715f * v.cube())).tanh());
        break;
      }
      case Activation::Relu:
        v = v.max(0.0f);
        break;
    }
  });
}

}  // namespace

std::vector<int32_t> positionIds(const ModelConfig& c, std::span<const int32_t> ids) {
  std::vector<int32_t> pos(ids.size());
  if (c.arch == Architecture::Roberta) {
    // transformers' create_position_ids_from_input_ids: pad tokens keep pad.
    int32_t count = 0;
    for (size_t i = 0; i < ids.size(); ++i)
      pos[i] = ids[i] != c.padTokenId ? c.padTokenId + (++count) : c.padTokenId;
  } else {
    for (size_t i = 0; i < ids.size(); ++i) pos[i] = static_cast<int32_t>(i);
  }
  return pos;
}

Result<ForwardResult> forward(const ModelConfig& c, const ModelWeights& w,
                              std::span<const int32_t> ids, std::span<const int32_t> mask,
                              const ForwardOptions& opt) {
  const int S = static_cast<int>(ids.size()), D = c.hidden, H = c.heads, Dh = c.headDim(),
            L = c.layers;
  if (S == 0) return makeError("the input has no tokens");
  if (!mask.empty() && mask.size() != ids.size())
    return makeError("attention mask has " + std::to_string(mask.size()) + " entries for " +
                     std::to_string(S) + " tokens");
  if (static_cast<int>(w.layers.size()) != L) return makeError("weights do not match the config");
  for (int i = 0; i < S; ++i)
    if (ids[i] < 0 || ids[i] >= c.vocabSize)
      return makeError("token id " + std::to_string(ids[i]) + " at position " + std::to_string(i) +
                       " is outside the vocabulary (0.." + std::to_string(c.vocabSize - 1) + ")");
  const std::vector<int32_t> pos = positionIds(c, ids);
  for (int i = 0; i < S; ++i)
    if (pos[i] >= c.maxPositions)
      return makeError("the input has " + std::to_string(S) + " tokens; the model allows " +
                       std::to_string(c.maxPositions - (pos[i] - i)) + " positions");

  ThreadPool* pool = opt.pool;
  ForwardResult r;
  r.layers = L;
  r.heads = H;
  r.seq = S;
  r.hidden = D;
  r.headDim = Dh;
  const size_t mapSize = static_cast<size_t>(S) * S;
  r.attention.resize(static_cast<size_t>(L) * H * mapSize);
  if (opt.captureScores) r.scores.resize(r.attention.size());
  if (opt.captureContext) r.context.resize(static_cast<size_t>(L) * H * S * Dh);
  if (opt.captureHidden) r.hiddenStates.resize(static_cast<size_t>(L + 1) * S * D);
  if (opt.captureFfnInputs) r.ffnInputs.resize(static_cast<size_t>(L) * S * D);
  auto saveHidden = [&](int index, const Mat& x) {
    if (opt.captureHidden)
      std::copy(x.data(), x.data() + x.size(),
                r.hiddenStates.data() + index * static_cast<size_t>(S) * D);
  };

  Mat x(S, D), tmp, q, k, v, qkv, ctx(S, D), attnOut, ffn;
  int first = 0;  // the first layer this pass computes
  const bool atFfn = opt.resume != nullptr && opt.resumeAtFfn;  // layer `first` from its FFN
  if (opt.resume != nullptr) {
    const ForwardResult& from = *opt.resume;
    const int at = opt.resumeLayer;
    if (at < (atFfn ? 0 : 1) || at >= L)
      return makeError("resume layer " + std::to_string(at) + " is outside " +
                       (atFfn ? "0.." : "1..") + std::to_string(L - 1));
    const size_t state = size_t(S) * D;
    if (from.layers != L || from.heads != H || from.seq != S || from.hidden != D ||
        ((!atFfn || opt.captureHidden) && from.hiddenStates.size() != size_t(L + 1) * state) ||
        ((atFfn || opt.captureFfnInputs) && from.ffnInputs.size() != size_t(L) * state) ||
        (opt.captureScores && from.scores.size() != r.scores.size()) ||
        (opt.captureContext && from.context.size() != r.context.size()))
      return makeError(
          "the result to resume from does not match this input or lacks what is asked for");
    const size_t maps = size_t(at + (atFfn ? 1 : 0)) * H;  // the layers taken over, as maps
    std::copy(from.attention.begin(), from.attention.begin() + maps * mapSize, r.attention.begin());
    if (opt.captureScores)
      std::copy(from.scores.begin(), from.scores.begin() + maps * mapSize, r.scores.begin());
    if (opt.captureContext)
      std::copy(from.context.begin(), from.context.begin() + maps * S * Dh, r.context.begin());
    if (opt.captureHidden)
      std::copy(from.hiddenStates.begin(), from.hiddenStates.begin() + (at + 1) * state,
                r.hiddenStates.begin());
    if (opt.captureFfnInputs)
      std::copy(from.ffnInputs.begin(), from.ffnInputs.begin() + (at + (atFfn ? 1 : 0)) * state,
                r.ffnInputs.begin());
    x = Eigen::Map<const Mat>((atFfn ? from.ffnInputs : from.hiddenStates).data() + at * state, S, D);
    first = at;
    if (opt.progress && at > 0) opt.progress(at, L);
  } else {  // Embeddings. x: [S, D]
    const ConstRowMap word = w.wordEmb.matrix(), position = w.posEmb.matrix();
    for (int i = 0; i < S; ++i) {
      x.row(i) = word.row(ids[i]) + position.row(pos[i]);
      if (!w.typeEmb.empty()) x.row(i) += w.typeEmb.matrix().row(0);
    }
    if (!c.preLayerNorm()) {
      layerNorm(w.embNorm, x, tmp, c.layerNormEps, pool);
      x.swap(tmp);
    }
    saveHidden(0, x);
  }

  // Keys that may be attended: padding mask, then the causal mask per row.
  std::vector<uint8_t> keyOk(S, 1);
  for (int j = 0; j < S && !mask.empty(); ++j) keyOk[j] = mask[j] != 0;
  const bool anyMasked = c.causal() || std::find(keyOk.begin(), keyOk.end(), 0) != keyOk.end();
  const float scale = 1.0f / std::sqrt(static_cast<float>(Dh));
  const float lowest = std::numeric_limits<float>::lowest();  // finfo(float32).min

  for (int l = first; l < L; ++l) {
    if (isCancelled(opt.cancel)) return makeError("cancelled");
    const LayerWeights& lw = w.layers[l];
    Mat normed;
    if (!(atFfn && l == first)) {  // the attention block (taken over when resuming at the FFN)
      const Mat* attnIn = &x;
      if (c.preLayerNorm()) {
        layerNorm(lw.attnNorm, x, normed, c.layerNormEps, pool);
        attnIn = &normed;
      }
      // q, k, v: [S, D] (views into qkv: [S, 3D] for GPT-2)
      const float *qp, *kp, *vp;
      Eigen::Index ld;
      if (lw.fusedQkv()) {
        linear(lw.qkv, *attnIn, qkv, pool);
        qp = qkv.data();
        kp = qkv.data() + D;
        vp = qkv.data() + 2 * D;
        ld = 3 * D;
      } else {
        linear(lw.q, *attnIn, q, pool);
        linear(lw.k, *attnIn, k, pool);
        linear(lw.v, *attnIn, v, pool);
        qp = q.data();
        kp = k.data();
        vp = v.data();
        ld = D;
      }
      using Strided = Eigen::Map<const Mat, 0, Eigen::OuterStride<>>;
      const bool scaleQueries = c.arch == Architecture::DistilBert;
      auto headTask = [&](int64_t h) {
        if (isCancelled(opt.cancel)) return;
        const Strided qh(qp + h * Dh, S, Dh, Eigen::OuterStride<>(ld));  // [S, Dh]
        const Strided kh(kp + h * Dh, S, Dh, Eigen::OuterStride<>(ld));  // [S, Dh]
        const Strided vh(vp + h * Dh, S, Dh, Eigen::OuterStride<>(ld));  // [S, Dh]
        const size_t at = (static_cast<size_t>(l) * H + h) * mapSize;
        MatMap p(r.attention.data() + at, S, S);  // [S, S]
        if (scaleQueries)                         // DistilBERT scales q before q·kᵀ
          p.noalias() = (qh * scale) * kh.transpose();
        else {
          p.noalias() = qh * kh.transpose();
          p *= scale;
        }
        if (opt.captureScores) std::copy(p.data(), p.data() + mapSize, r.scores.data() + at);
        for (int i = 0; i < S; ++i) {
          float* row = p.data() + static_cast<size_t>(i) * S;
          const int visible = c.causal() ? i + 1 : S;
          // As transformers adds its masks: a key that is padding or (causal) in the
          // future gets finfo.min; one that is both gets min + min = −inf.
          for (int j = 0; j < S && anyMasked; ++j) {  // (a branch per key: skipped when none is)
            const bool future = j >= visible;
            if (future && !keyOk[j])
              row[j] = -std::numeric_limits<float>::infinity();
            else if (future || !keyOk[j])
              row[j] = lowest;
          }
          Eigen::Map<Eigen::ArrayXf> a(row, S);
          // Fully masked rows stay finite and come out uniform, as in transformers.
          a -= a.maxCoeff();
          expShiftedRow(row, S);  // masked keys exactly 0
          a /= a.sum();
        }
        if (opt.attentionTransform) opt.attentionTransform(l, int(h), p.data(), S);
        // ctx[:, h] = P · V_h  [S, Dh]
        ctx.middleCols(h * Dh, Dh).noalias() = p * vh;
        if (opt.captureContext) {
          float* dst = r.context.data() + (static_cast<size_t>(l) * H + h) * S * Dh;
          Eigen::Map<Mat>(dst, S, Dh) = ctx.middleCols(h * Dh, Dh);
        }
      };
      if (pool != nullptr)
        pool->run(H, headTask);
      else
        for (int h = 0; h < H; ++h) headTask(h);
      if (isCancelled(opt.cancel)) return makeError("cancelled");

      linear(lw.o, ctx, attnOut, pool);  // [S, D]
      if (c.preLayerNorm()) {
        x += attnOut;
      } else {
        attnOut += x;
        layerNorm(lw.attnNorm, attnOut, x, c.layerNormEps, pool);
      }
      if (opt.captureFfnInputs)
        std::copy(x.data(), x.data() + x.size(), r.ffnInputs.data() + size_t(l) * S * D);
    }
    // The feed-forward block, from x.
    if (c.preLayerNorm()) {
      layerNorm(lw.ffnNorm, x, normed, c.layerNormEps, pool);
      linear(lw.ffnIn, normed, ffn, pool);  // [S, F]
      activate(ffn, c.activation, pool);
      linear(lw.ffnOut, ffn, tmp, pool);  // [S, D]
      x += tmp;
    } else {
      linear(lw.ffnIn, x, ffn, pool);
      activate(ffn, c.activation, pool);
      linear(lw.ffnOut, ffn, tmp, pool);
      tmp += x;
      layerNorm(lw.ffnNorm, tmp, x, c.layerNormEps, pool);
    }
    if (l == L - 1 && c.preLayerNorm()) {
      layerNorm(w.finalNorm, x, tmp, c.layerNormEps, pool);
      x.swap(tmp);
    }
    saveHidden(l + 1, x);
    if (opt.progress) opt.progress(l + 1, L);
  }
  r.lastHidden.assign(x.data(), x.data() + x.size());
  return r;
}

}  // namespace attn
