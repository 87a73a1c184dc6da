#include "core/distill/network.h"

#include <random>
#include <string>

namespace attn::distill {

namespace {

struct Builder {
  Layout l;
  size_t add(size_t n, bool decay) {
    const size_t at = l.size;
    l.segments.push_back({at, n, decay});
    l.size += n;
    return at;
  }
  LinearSlot linear(int out, int in) {
    LinearSlot s;
    s.out = out;
    s.in = in;
    s.w = add(static_cast<size_t>(out) * in, true);
    s.b = add(static_cast<size_t>(out), false);
    return s;
  }
  NormSlot norm(int d) {
    NormSlot s;
    s.gamma = add(static_cast<size_t>(d), false);
    s.beta = add(static_cast<size_t>(d), false);
    return s;
  }
};

// Copies W ([out, in], or [in, out] when inOut; a column block [c0, c0 + out) of a
// fused [in, 3·out] Conv1D) into dst [out, in].
void copyLinear(const Linear& src, int c0, int out, float* dst) {
  const float* w = src.w.f32();
  if (!src.inOut) {
    std::copy(w, w + static_cast<size_t>(out) * src.in, dst);
    return;
  }
  const int cols = src.out;
  for (int o = 0; o < out; ++o)
    for (int i = 0; i < src.in; ++i)
      dst[static_cast<size_t>(o) * src.in + i] = w[static_cast<size_t>(i) * cols + c0 + o];
}

Tensor vectorTensor(const float* p, int n) {
  return Tensor::fromF32({n}, std::vector<float>(p, p + n));
}

}  // namespace

Layout makeLayout(const ModelConfig& c) {
  Builder b;
  const int D = c.hidden;
  b.l.wordEmb = b.add(static_cast<size_t>(c.vocabSize) * D, true);
  b.l.posEmb = b.add(static_cast<size_t>(c.maxPositions) * D, true);
  b.l.typeRows = c.arch == Architecture::Gpt2 || c.arch == Architecture::DistilBert
                     ? 0
                     : std::max(c.typeVocabSize, 0);
  if (b.l.typeRows > 0) b.l.typeEmb = b.add(static_cast<size_t>(b.l.typeRows) * D, true);
  if (!c.preLayerNorm()) b.l.embNorm = b.norm(D);
  for (int i = 0; i < c.layers; ++i) {
    LayerSlots s;
    s.q = b.linear(D, D);
    s.k = b.linear(D, D);
    s.v = b.linear(D, D);
    s.o = b.linear(D, D);
    s.attnNorm = b.norm(D);
    s.ffnIn = b.linear(c.intermediate, D);
    s.ffnOut = b.linear(D, c.intermediate);
    s.ffnNorm = b.norm(D);
    b.l.layers.push_back(s);
  }
  if (c.preLayerNorm()) b.l.finalNorm = b.norm(D);
  return b.l;
}

Result<Network> networkFromWeights(const ModelConfig& c, const ModelWeights& w) {
  if (static_cast<int>(w.layers.size()) != c.layers)
    return makeError("the weights do not match the config");
  Network net;
  net.config = c;
  net.layout = makeLayout(c);
  net.params.assign(net.layout.size, 0.0f);
  const Layout& L = net.layout;
  const int D = c.hidden;
  auto copy = [&](const Tensor& t, size_t at, size_t n) {
    if (t.empty()) return;
    std::copy(t.f32(), t.f32() + std::min<size_t>(n, t.numel()), net.at(at));
  };
  copy(w.wordEmb, L.wordEmb, static_cast<size_t>(c.vocabSize) * D);
  copy(w.posEmb, L.posEmb, static_cast<size_t>(c.maxPositions) * D);
  if (L.typeRows > 0) copy(w.typeEmb, L.typeEmb, static_cast<size_t>(L.typeRows) * D);
  auto norm = [&](const Norm& n, const NormSlot& s) {
    copy(n.gamma, s.gamma, D);
    copy(n.beta, s.beta, D);
  };
  auto linear = [&](const Linear& src, int c0, const LinearSlot& s) {
    copyLinear(src, c0, s.out, net.at(s.w));
    if (!src.b.empty()) std::copy(src.b.f32() + c0, src.b.f32() + c0 + s.out, net.at(s.b));
  };
  if (!c.preLayerNorm()) norm(w.embNorm, L.embNorm);
  for (int i = 0; i < c.layers; ++i) {
    const LayerWeights& lw = w.layers[i];
    const LayerSlots& s = L.layers[i];
    if (lw.fusedQkv()) {
      linear(lw.qkv, 0, s.q);
      linear(lw.qkv, D, s.k);
      linear(lw.qkv, 2 * D, s.v);
    } else {
      linear(lw.q, 0, s.q);
      linear(lw.k, 0, s.k);
      linear(lw.v, 0, s.v);
    }
    linear(lw.o, 0, s.o);
    linear(lw.ffnIn, 0, s.ffnIn);
    linear(lw.ffnOut, 0, s.ffnOut);
    norm(lw.attnNorm, s.attnNorm);
    norm(lw.ffnNorm, s.ffnNorm);
  }
  if (c.preLayerNorm()) norm(w.finalNorm, L.finalNorm);
  return net;
}

Network randomNetwork(const ModelConfig& c, uint64_t seed) {
  Network net;
  net.config = c;
  net.layout = makeLayout(c);
  net.params.assign(net.layout.size, 0.0f);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  for (const Segment& s : net.layout.segments)
    if (s.decay)
      for (size_t i = 0; i < s.size; ++i) net.params[s.offset + i] = normal(rng);
  auto ones = [&](const NormSlot& n) {
    std::fill(net.at(n.gamma), net.at(n.gamma) + c.hidden, 1.0f);
  };
  if (!c.preLayerNorm()) ones(net.layout.embNorm);
  for (const LayerSlots& s : net.layout.layers) {
    ones(s.attnNorm);
    ones(s.ffnNorm);
  }
  if (c.preLayerNorm()) ones(net.layout.finalNorm);
  return net;
}

ModelWeights networkWeights(const Network& net) {
  const ModelConfig& c = net.config;
  const Layout& L = net.layout;
  const int D = c.hidden;
  const bool gpt2 = c.arch == Architecture::Gpt2;
  ModelWeights w;
  auto matrix = [&](size_t at, int rows, int cols) {
    return Tensor::fromF32({rows, cols},
                           std::vector<float>(net.at(at), net.at(at) + size_t(rows) * cols));
  };
  w.wordEmb = matrix(L.wordEmb, c.vocabSize, D);
  w.posEmb = matrix(L.posEmb, c.maxPositions, D);
  if (L.typeRows > 0) w.typeEmb = matrix(L.typeEmb, L.typeRows, D);
  auto norm = [&](const NormSlot& s) {
    return Norm{vectorTensor(net.at(s.gamma), D), vectorTensor(net.at(s.beta), D)};
  };
  // [out, in] → Linear as the architecture stores it.
  auto linear = [&](std::initializer_list<const LinearSlot*> parts) {
    Linear l;
    l.in = parts.begin()[0]->in;
    l.out = 0;
    for (const LinearSlot* p : parts) l.out += p->out;
    l.inOut = gpt2;
    std::vector<float> wv(static_cast<size_t>(l.out) * l.in), bv;
    int row = 0;
    for (const LinearSlot* p : parts) {
      for (int o = 0; o < p->out; ++o)
        for (int i = 0; i < p->in; ++i) {
          const float x = net.at(p->w)[static_cast<size_t>(o) * p->in + i];
          if (gpt2)
            wv[static_cast<size_t>(i) * l.out + row + o] = x;
          else
            wv[static_cast<size_t>(row + o) * l.in + i] = x;
        }
      bv.insert(bv.end(), net.at(p->b), net.at(p->b) + p->out);
      row += p->out;
    }
    l.w = gpt2 ? Tensor::fromF32({l.in, l.out}, std::move(wv))
               : Tensor::fromF32({l.out, l.in}, std::move(wv));
    l.b = Tensor::fromF32({l.out}, std::move(bv));
    return l;
  };
  if (!c.preLayerNorm()) w.embNorm = norm(L.embNorm);
  for (const LayerSlots& s : L.layers) {
    LayerWeights lw;
    if (gpt2) {
      lw.qkv = linear({&s.q, &s.k, &s.v});
    } else {
      lw.q = linear({&s.q});
      lw.k = linear({&s.k});
      lw.v = linear({&s.v});
    }
    lw.o = linear({&s.o});
    lw.ffnIn = linear({&s.ffnIn});
    lw.ffnOut = linear({&s.ffnOut});
    lw.attnNorm = norm(s.attnNorm);
    lw.ffnNorm = norm(s.ffnNorm);
    w.layers.push_back(std::move(lw));
  }
  if (c.preLayerNorm()) w.finalNorm = norm(L.finalNorm);
  return w;
}

Status networkForward(const Network& net, const int32_t* ids, const int32_t* mask, int n, int S,
                      Activations& a) {
  const ModelConfig& c = net.config;
  const Layout& L = net.layout;
  const int D = c.hidden, N = n * S;
  a.n = n;
  a.seq = S;
  a.ids.assign(ids, ids + N);
  a.mask.assign(mask, mask + N);
  a.positions.resize(static_cast<size_t>(N));
  for (int b = 0; b < n; ++b) {
    const std::vector<int32_t> pos = positionIds(c, {ids + static_cast<size_t>(b) * S, size_t(S)});
    std::copy(pos.begin(), pos.end(), a.positions.begin() + static_cast<size_t>(b) * S);
  }
  for (int r = 0; r < N; ++r) {
    if (a.ids[r] < 0 || a.ids[r] >= c.vocabSize)
      return makeError("token id " + std::to_string(a.ids[r]) + " is outside the vocabulary");
    if (a.positions[r] < 0 || a.positions[r] >= c.maxPositions)
      return makeError("sequence of " + std::to_string(S) + " tokens is longer than the model's " +
                       std::to_string(c.maxPositions) + " positions");
  }
  a.embeddings.resize(N, D);
  for (int r = 0; r < N; ++r) {
    float* x = a.embeddings.data() + static_cast<size_t>(r) * D;
    const float* wv = net.at(L.wordEmb) + static_cast<size_t>(a.ids[r]) * D;
    const float* pv = net.at(L.posEmb) + static_cast<size_t>(a.positions[r]) * D;
    for (int i = 0; i < D; ++i) x[i] = wv[i] + pv[i];
    if (L.typeRows > 0)
      for (int i = 0; i < D; ++i) x[i] += net.at(L.typeEmb)[i];
  }
  a.layers.resize(static_cast<size_t>(c.layers));
  Mat h;
  if (c.preLayerNorm())
    h = a.embeddings;
  else
    layerNormForward(net.at(L.embNorm.gamma), net.at(L.embNorm.beta), c.layerNormEps, a.embeddings,
                     h, a.embNorm);
  const AttentionShape shape{n, S, c.heads, c.headDim(), c.causal()};
  Mat attnOut, ffnOut, sum;
  for (int l = 0; l < c.layers; ++l) {
    LayerActivations& la = a.layers[l];
    const LayerSlots& s = L.layers[l];
    la.in = std::move(h);
    const Mat* attnIn = &la.in;
    if (c.preLayerNorm()) {
      layerNormForward(net.at(s.attnNorm.gamma), net.at(s.attnNorm.beta), c.layerNormEps, la.in,
                       la.normed1, la.norm1);
      attnIn = &la.normed1;
    }
    linearForward(net.at(s.q.w), net.at(s.q.b), D, D, *attnIn, la.q);
    linearForward(net.at(s.k.w), net.at(s.k.b), D, D, *attnIn, la.k);
    linearForward(net.at(s.v.w), net.at(s.v.b), D, D, *attnIn, la.v);
    la.p.resize(static_cast<size_t>(n) * c.heads * S * S);
    attentionForward(shape, la.q, la.k, la.v, a.mask.data(), la.p.data(), la.ctx);
    linearForward(net.at(s.o.w), net.at(s.o.b), D, D, la.ctx, attnOut);
    const int F = c.intermediate;
    if (c.preLayerNorm()) {
      la.r1 = la.in + attnOut;
      layerNormForward(net.at(s.ffnNorm.gamma), net.at(s.ffnNorm.beta), c.layerNormEps, la.r1,
                       la.normed2, la.norm2);
      linearForward(net.at(s.ffnIn.w), net.at(s.ffnIn.b), F, D, la.normed2, la.pre);
      activationForward(c.activation, la.pre, la.act);
      linearForward(net.at(s.ffnOut.w), net.at(s.ffnOut.b), D, F, la.act, ffnOut);
      la.out = la.r1 + ffnOut;
    } else {
      sum = la.in + attnOut;
      layerNormForward(net.at(s.attnNorm.gamma), net.at(s.attnNorm.beta), c.layerNormEps, sum,
                       la.r1, la.norm1);
      linearForward(net.at(s.ffnIn.w), net.at(s.ffnIn.b), F, D, la.r1, la.pre);
      activationForward(c.activation, la.pre, la.act);
      linearForward(net.at(s.ffnOut.w), net.at(s.ffnOut.b), D, F, la.act, ffnOut);
      sum = ffnOut + la.r1;
      layerNormForward(net.at(s.ffnNorm.gamma), net.at(s.ffnNorm.beta), c.layerNormEps, sum,
                       la.out, la.norm2);
    }
    h = la.out;
  }
  if (c.preLayerNorm())
    layerNormForward(net.at(L.finalNorm.gamma), net.at(L.finalNorm.beta), c.layerNormEps, h,
                     a.final, a.finalNorm);
  else
    a.final = std::move(h);
  return Ok{};
}

void networkBackward(const Network& net, const Activations& a, const ActivationGrads& g,
                     float* grad) {
  const ModelConfig& c = net.config;
  const Layout& L = net.layout;
  const int D = c.hidden, F = c.intermediate, N = a.n * a.seq, Lc = c.layers;
  const AttentionShape shape{a.n, a.seq, c.heads, c.headDim(), c.causal()};
  auto has = [](const std::vector<Mat>& v, int l) {
    return l < static_cast<int>(v.size()) && v[l].size() > 0;
  };
  Mat dh = Mat::Zero(N, D);
  if (has(g.hidden, Lc - 1)) dh = g.hidden[Lc - 1];
  if (c.preLayerNorm()) {
    Mat t;
    layerNormBackward(net.at(L.finalNorm.gamma), a.finalNorm, dh, t, grad + L.finalNorm.gamma,
                      grad + L.finalNorm.beta);
    dh.swap(t);
  }
  Mat d1, d2, dact, dpre, dctx, dq, dk, dv, dx;
  auto linBack = [&](const LinearSlot& s, const Mat& x, const Mat& dy, Mat* dxOut) {
    linearBackward(net.at(s.w), s.out, s.in, x, dy, dxOut, grad + s.w, grad + s.b);
  };
  for (int l = Lc - 1; l >= 0; --l) {
    const LayerActivations& la = a.layers[l];
    const LayerSlots& s = L.layers[l];
    if (l < Lc - 1 && has(g.hidden, l)) dh += g.hidden[l];
    Mat dAttnIn;  // gradient w.r.t. the attention block's input (in or normed1)
    Mat dr1;      // gradient w.r.t. r1
    if (c.preLayerNorm()) {
      // out = r1 + FFN(LN2(r1))
      linBack(s.ffnOut, la.act, dh, &dact);
      activationBackward(c.activation, la.pre, dact, dpre);
      linBack(s.ffnIn, la.normed2, dpre, &d1);
      layerNormBackward(net.at(s.ffnNorm.gamma), la.norm2, d1, d2, grad + s.ffnNorm.gamma,
                        grad + s.ffnNorm.beta);
      dr1 = dh + d2;
    } else {
      // out = LN2(r1 + FFN(r1)); r1 = LN1(in + O)
      layerNormBackward(net.at(s.ffnNorm.gamma), la.norm2, dh, d1, grad + s.ffnNorm.gamma,
                        grad + s.ffnNorm.beta);
      linBack(s.ffnOut, la.act, d1, &dact);
      activationBackward(c.activation, la.pre, dact, dpre);
      linBack(s.ffnIn, la.r1, dpre, &d2);
      d2 += d1;
      layerNormBackward(net.at(s.attnNorm.gamma), la.norm1, d2, dr1, grad + s.attnNorm.gamma,
                        grad + s.attnNorm.beta);
    }
    // r1 = in + O(ctx): dr1 flows to in and to O.
    linBack(s.o, la.ctx, dr1, &dctx);
    const float* dp = l < static_cast<int>(g.attention.size()) && !g.attention[l].empty()
                          ? g.attention[l].data()
                          : nullptr;
    attentionBackward(shape, la.q, la.k, la.v, la.p.data(), dctx, dp, dq, dk, dv);
    if (has(g.q, l)) dq += g.q[l];
    if (has(g.k, l)) dk += g.k[l];
    if (has(g.v, l)) dv += g.v[l];
    const Mat& attnIn = c.preLayerNorm() ? la.normed1 : la.in;
    linBack(s.q, attnIn, dq, &dAttnIn);
    linBack(s.k, attnIn, dk, &dx);
    dAttnIn += dx;
    linBack(s.v, attnIn, dv, &dx);
    dAttnIn += dx;
    if (c.preLayerNorm()) {
      layerNormBackward(net.at(s.attnNorm.gamma), la.norm1, dAttnIn, dx, grad + s.attnNorm.gamma,
                        grad + s.attnNorm.beta);
      dh = dr1 + dx;
    } else {
      dh = dr1 + dAttnIn;
    }
  }
  if (!c.preLayerNorm()) {
    layerNormBackward(net.at(L.embNorm.gamma), a.embNorm, dh, dx, grad + L.embNorm.gamma,
                      grad + L.embNorm.beta);
    dh.swap(dx);
  }
  for (int r = 0; r < N; ++r) {
    const float* d = dh.data() + static_cast<size_t>(r) * D;
    float* gw = grad + L.wordEmb + static_cast<size_t>(a.ids[r]) * D;
    float* gp = grad + L.posEmb + static_cast<size_t>(a.positions[r]) * D;
    for (int i = 0; i < D; ++i) {
      gw[i] += d[i];
      gp[i] += d[i];
    }
    if (L.typeRows > 0)
      for (int i = 0; i < D; ++i) grad[L.typeEmb + i] += d[i];
  }
  (void)F;
}

void lmLogits(const Network& net, const Activations& a, Mat& logits) {
  const Eigen::Map<const Mat> W(net.at(net.layout.wordEmb), net.config.vocabSize,
                                net.config.hidden);
  logits.resize(a.final.rows(), net.config.vocabSize);
  logits.noalias() = a.final * W.transpose();
}

void lmLogitsBackward(const Network& net, const Activations& a, const Mat& dlogits, Mat& dfinal,
                      float* grad) {
  const Eigen::Map<const Mat> W(net.at(net.layout.wordEmb), net.config.vocabSize,
                                net.config.hidden);
  if (dfinal.size() == 0) dfinal = Mat::Zero(a.final.rows(), net.config.hidden);
  dfinal.noalias() += dlogits * W;
  Eigen::Map<Mat>(grad + net.layout.wordEmb, net.config.vocabSize, net.config.hidden).noalias() +=
      dlogits.transpose() * a.final;
}

}  // namespace attn::distill
