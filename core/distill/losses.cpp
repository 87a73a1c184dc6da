#include "core/distill/losses.h"

#include <cmath>
#include <limits>
#include <numeric>
#include <random>

namespace attn::distill {

namespace {

constexpr float kTiny = 1e-30f;

// Loss of one row of maps and its gradient with respect to the student's row.
double rowLoss(AttentionLoss kind, const float* tRow, const float* sRow, int seq, float scale,
               float* dS) {
  double loss = 0.0;
  if (kind == AttentionLoss::Kl) {
    for (int j = 0; j < seq; ++j) {
      if (tRow[j] <= 0.0f) continue;
      const float s = std::max(sRow[j], kTiny);
      loss += tRow[j] * (std::log(static_cast<double>(tRow[j])) - std::log(static_cast<double>(s)));
      dS[j] += -scale * tRow[j] / s;
    }
  } else {
    for (int j = 0; j < seq; ++j) {
      const double d = static_cast<double>(tRow[j]) - sRow[j];
      loss += d * d;
      dS[j] += -2.0f * scale * static_cast<float>(d);
    }
  }
  return loss;
}

double mapScale(AttentionLoss kind, const Normalizers& n, int heads) {
  switch (kind) {
    case AttentionLoss::Kl: return 1.0 / (heads * n.rows);
    case AttentionLoss::Mse: return 1.0 / (heads * n.entries);
    case AttentionLoss::Frobenius: return 1.0 / (heads * n.examples);
    case AttentionLoss::None: break;
  }
  return 0.0;
}

// Relation maps softmax(A_r B_rᵀ / √d) of one example, relation head r, masked like
// the model's attention. a, b: [N, D]; out: [S, S].
void relationMap(const Mat& a, const Mat& b, int example, int seq, int r, int d, bool causal,
                 const int32_t* mask, Mat& out) {
  using Strided = Eigen::Map<const Mat, 0, Eigen::OuterStride<>>;
  const int64_t off = static_cast<int64_t>(example) * seq * a.cols() + static_cast<int64_t>(r) * d;
  const Strided ar(a.data() + off, seq, d, Eigen::OuterStride<>(a.cols()));
  const Strided br(b.data() + off, seq, d, Eigen::OuterStride<>(b.cols()));
  out.resize(seq, seq);
  out.noalias() = ar * br.transpose();
  out *= 1.0f / std::sqrt(static_cast<float>(d));
  const int32_t* m = mask + static_cast<size_t>(example) * seq;
  for (int i = 0; i < seq; ++i) maskedSoftmaxRow(out.data() + static_cast<size_t>(i) * seq, seq, m, causal ? i + 1 : seq);
}

// Relation loss between teacher (ta, tb) and student (sa, sb) matrices; gradients
// added to dsa and dsb (which may alias when sa == sb). Returns the loss.
double relationLoss(AttentionLoss kind, double scale, const Mat& ta, const Mat& tb, const Mat& sa,
                    const Mat& sb, int n, int seq, int R, bool tCausal, bool sCausal,
                    const int32_t* mask, Mat& dsa, Mat& dsb) {
  const int dt = static_cast<int>(ta.cols()) / R, ds = static_cast<int>(sa.cols()) / R;
  Mat T, S, dP(seq, seq), dScore(seq, seq);
  double loss = 0.0;
  using StridedMut = Eigen::Map<Mat, 0, Eigen::OuterStride<>>;
  using Strided = Eigen::Map<const Mat, 0, Eigen::OuterStride<>>;
  for (int b = 0; b < n; ++b) {
    const int32_t* m = mask + static_cast<size_t>(b) * seq;
    for (int r = 0; r < R; ++r) {
      relationMap(ta, tb, b, seq, r, dt, tCausal, mask, T);
      relationMap(sa, sb, b, seq, r, ds, sCausal, mask, S);
      dP.setZero();
      for (int i = 0; i < seq; ++i) {
        if (m[i] == 0) continue;
        loss += rowLoss(kind, T.data() + size_t(i) * seq, S.data() + size_t(i) * seq, seq,
                        static_cast<float>(scale), dP.data() + size_t(i) * seq);
      }
      for (int i = 0; i < seq; ++i)
        softmaxBackwardRow(S.data() + size_t(i) * seq, dP.data() + size_t(i) * seq,
                           dScore.data() + size_t(i) * seq, seq);
      dScore *= 1.0f / std::sqrt(static_cast<float>(ds));
      const int64_t off = static_cast<int64_t>(b) * seq * sa.cols() + static_cast<int64_t>(r) * ds;
      const Eigen::OuterStride<> st(sa.cols());
      const Strided ar(sa.data() + off, seq, ds, st), br(sb.data() + off, seq, ds, st);
      StridedMut(dsa.data() + off, seq, ds, st).noalias() += dScore * br;
      StridedMut(dsb.data() + off, seq, ds, st).noalias() += dScore.transpose() * ar;
    }
  }
  return loss * scale;
}

void ensure(Mat& m, Eigen::Index rows, Eigen::Index cols) {
  if (m.size() == 0) m = Mat::Zero(rows, cols);
}

// Row-wise log-softmax of z / τ.
void logSoftmax(const Mat& z, double tau, Mat& out) {
  out = z / static_cast<float>(tau);
  for (Eigen::Index r = 0; r < out.rows(); ++r) {
    auto row = out.row(r);
    const float mx = row.maxCoeff();
    const double lse = mx + std::log(static_cast<double>((row.array() - mx).exp().sum()));
    row.array() -= static_cast<float>(lse);
  }
}

}  // namespace

const char* attentionLossName(AttentionLoss l) {
  switch (l) {
    case AttentionLoss::None: return "none";
    case AttentionLoss::Mse: return "mse";
    case AttentionLoss::Frobenius: return "frobenius";
    case AttentionLoss::Kl: return "kl";
  }
  return "?";
}

Result<AttentionLoss> parseAttentionLoss(const std::string& t) {
  for (AttentionLoss l : {AttentionLoss::None, AttentionLoss::Mse, AttentionLoss::Frobenius,
                          AttentionLoss::Kl})
    if (t == attentionLossName(l)) return l;
  return makeError("unknown attention loss '" + t + "' (none, mse, frobenius, kl)");
}

const char* headModeName(HeadMode h) {
  switch (h) {
    case HeadMode::Auto: return "auto";
    case HeadMode::Average: return "average";
    case HeadMode::Relation: return "relation";
  }
  return "?";
}

Result<HeadMode> parseHeadMode(const std::string& t) {
  for (HeadMode h : {HeadMode::Auto, HeadMode::Average, HeadMode::Relation})
    if (t == headModeName(h)) return h;
  return makeError("unknown head handling '" + t + "' (auto, average, relation)");
}

Status validateLoss(const LossOptions& o, const ModelConfig& t, const ModelConfig& s) {
  if (static_cast<int>(o.mapping.size()) != s.layers)
    return makeError("the layer mapping has " + std::to_string(o.mapping.size()) +
                     " entries for a student with " + std::to_string(s.layers) + " layers");
  for (int m : o.mapping)
    if (m < -1 || m >= t.layers)
      return makeError("the layer mapping names teacher layer " + std::to_string(m) +
                       "; the teacher has layers 0.." + std::to_string(t.layers - 1));
  for (double w : {o.attentionWeight, o.valueWeight, o.hiddenWeight, o.logitWeight, o.lmWeight})
    if (!(w >= 0.0) || !std::isfinite(w)) return makeError("loss weights must be finite and ≥ 0");
  if (!(o.temperature > 0.0)) return makeError("the temperature must be > 0");
  const bool relation = o.heads == HeadMode::Relation && o.attention != AttentionLoss::None;
  if (relation || o.valueWeight > 0) {
    const int R = o.relationHeads > 0 ? o.relationHeads : s.heads;
    if (t.hidden % R != 0 || s.hidden % R != 0)
      return makeError(std::to_string(R) + " relation heads do not divide the widths (teacher " +
                       std::to_string(t.hidden) + ", student " + std::to_string(s.hidden) + ")");
  }
  if (o.logitWeight > 0) {
    if (t.arch != Architecture::Gpt2 || s.arch != Architecture::Gpt2)
      return makeError("logit distillation needs two models with tied LM heads (GPT-2)");
    if (t.vocabSize != s.vocabSize)
      return makeError("logit distillation needs the same vocabulary (teacher " +
                       std::to_string(t.vocabSize) + ", student " + std::to_string(s.vocabSize) +
                       " tokens)");
  }
  if (o.lmWeight > 0 && !s.causal())
    return makeError("the language-model loss needs a causal model with a tied LM head (GPT-2)");
  return Ok{};
}

Normalizers normalizers(const int32_t* mask, int n, int seq) {
  Normalizers z;
  z.examples = n;
  for (int b = 0; b < n; ++b) {
    double valid = 0;
    for (int i = 0; i < seq; ++i) {
      const int32_t* m = mask + static_cast<size_t>(b) * seq;
      valid += m[i] != 0;
      if (i + 1 < seq && m[i] != 0 && m[i + 1] != 0) z.lmTokens += 1;
    }
    z.rows += valid;
    z.entries += valid * valid;
  }
  return z;
}

void LossValues::add(const LossValues& o) {
  total += o.total;
  if (attention.size() < o.attention.size()) attention.resize(o.attention.size(), 0.0);
  for (size_t i = 0; i < o.attention.size(); ++i) attention[i] += o.attention[i];
  value += o.value;
  hidden += o.hidden;
  logit += o.logit;
  lm += o.lm;
}

ProjectionSlots projectionSlots(const LossOptions& o, const ModelConfig& t, const ModelConfig& s) {
  ProjectionSlots p;
  p.rows = t.hidden;
  p.cols = s.hidden;
  p.offset.assign(static_cast<size_t>(s.layers), std::numeric_limits<size_t>::max());
  if (o.hiddenWeight <= 0 || t.hidden == s.hidden) return p;
  for (int l = 0; l < s.layers; ++l)
    if (l < static_cast<int>(o.mapping.size()) && o.mapping[l] >= 0) {
      p.offset[l] = p.size;
      p.size += static_cast<size_t>(p.rows) * p.cols;
    }
  return p;
}

void initProjections(const ProjectionSlots& slots, float* extra, uint64_t seed) {
  std::mt19937_64 rng(seed ^ 0x9E3779B97F4A7C15ull);
  std::normal_distribution<float> normal(0.0f, 1.0f / std::sqrt(static_cast<float>(slots.cols)));
  for (size_t i = 0; i < slots.size; ++i) extra[i] = normal(rng);
}

void accumulateLosses(const LossOptions& o, const Normalizers& norm, const Network& student,
                      const Activations& s, const Network* teacher, const Activations* t,
                      const ProjectionSlots& proj, const float* extra, LossValues& v,
                      ActivationGrads& g, float* gradParams, float* gradExtra) {
  const ModelConfig& sc = student.config;
  const int n = s.n, S = s.seq, N = n * S, Ls = sc.layers, Hs = sc.heads;
  v.attention.resize(static_cast<size_t>(Ls), 0.0);
  if (static_cast<int>(g.attention.size()) != Ls) g.resize(Ls);
  const int32_t* mask = s.mask.data();
  const size_t mapSize = static_cast<size_t>(S) * S;

  for (int l = 0; l < Ls && teacher != nullptr; ++l) {
    const int tl = l < static_cast<int>(o.mapping.size()) ? o.mapping[l] : -1;
    if (tl < 0) continue;
    const ModelConfig& tc = teacher->config;
    const LayerActivations& sa = s.layers[l];
    const LayerActivations& ta = t->layers[tl];
    const int Ht = tc.heads;
    const int R = o.relationHeads > 0 ? o.relationHeads : Hs;

    if (o.attention != AttentionLoss::None && o.attentionWeight > 0) {
      if (o.heads == HeadMode::Relation) {
        const double scale = o.attentionWeight * mapScale(o.attention, norm, R);
        ensure(g.q[l], N, sc.hidden);
        ensure(g.k[l], N, sc.hidden);
        const double loss = relationLoss(o.attention, scale, ta.q, ta.k, sa.q, sa.k, n, S, R,
                                         tc.causal(), sc.causal(), mask, g.q[l], g.k[l]);
        v.attention[l] += loss / o.attentionWeight;
        v.total += loss;
      } else {
        const bool perHead = o.heads == HeadMode::Auto && Ht == Hs;
        const int heads = perHead ? Hs : 1;
        const float scale = static_cast<float>(o.attentionWeight * mapScale(o.attention, norm, heads));
        if (g.attention[l].empty()) g.attention[l].assign(sa.p.size(), 0.0f);
        std::vector<float> tAvg(mapSize), sAvg(mapSize), dAvg(mapSize);
        double loss = 0.0;
        for (int b = 0; b < n; ++b) {
          const int32_t* m = mask + static_cast<size_t>(b) * S;
          if (perHead) {
            for (int h = 0; h < Hs; ++h) {
              const float* tp = t->attention(tl, b, h, Ht);
              const float* sp = s.attention(l, b, h, Hs);
              float* dp = g.attention[l].data() + (sp - sa.p.data());
              for (int i = 0; i < S; ++i)
                if (m[i] != 0)
                  loss += rowLoss(o.attention, tp + size_t(i) * S, sp + size_t(i) * S, S, scale,
                                  dp + size_t(i) * S);
            }
          } else {
            std::fill(tAvg.begin(), tAvg.end(), 0.0f);
            std::fill(sAvg.begin(), sAvg.end(), 0.0f);
            std::fill(dAvg.begin(), dAvg.end(), 0.0f);
            for (int h = 0; h < Ht; ++h) {
              const float* tp = t->attention(tl, b, h, Ht);
              for (size_t e = 0; e < mapSize; ++e) tAvg[e] += tp[e] / static_cast<float>(Ht);
            }
            for (int h = 0; h < Hs; ++h) {
              const float* sp = s.attention(l, b, h, Hs);
              for (size_t e = 0; e < mapSize; ++e) sAvg[e] += sp[e] / static_cast<float>(Hs);
            }
            for (int i = 0; i < S; ++i)
              if (m[i] != 0)
                loss += rowLoss(o.attention, tAvg.data() + size_t(i) * S,
                                sAvg.data() + size_t(i) * S, S, scale, dAvg.data() + size_t(i) * S);
            for (int h = 0; h < Hs; ++h) {
              float* dp = g.attention[l].data() + (static_cast<size_t>(b) * Hs + h) * mapSize;
              for (size_t e = 0; e < mapSize; ++e) dp[e] += dAvg[e] / static_cast<float>(Hs);
            }
          }
        }
        loss *= scale;
        v.attention[l] += loss / o.attentionWeight;
        v.total += loss;
      }
    }

    if (o.valueWeight > 0) {
      const double scale = o.valueWeight / (R * norm.rows);
      ensure(g.v[l], N, sc.hidden);
      const double loss = relationLoss(AttentionLoss::Kl, scale, ta.v, ta.v, sa.v, sa.v, n, S, R,
                                       tc.causal(), sc.causal(), mask, g.v[l], g.v[l]);
      v.value += loss / o.valueWeight;
      v.total += loss;
    }

    if (o.hiddenWeight > 0) {
      const Mat& hs = s.hidden(l);
      const Mat& ht = t->hidden(tl);
      const int Dt = tc.hidden;
      const double scale = o.hiddenWeight / (norm.rows * Dt);
      Mat pred;
      const size_t off = proj.offset.empty() ? std::numeric_limits<size_t>::max() : proj.offset[l];
      const bool projected = off != std::numeric_limits<size_t>::max();
      if (projected)
        pred.noalias() = hs * Eigen::Map<const Mat>(extra + off, proj.rows, proj.cols).transpose();
      else
        pred = hs;
      Mat diff = pred - ht;
      for (int r = 0; r < N; ++r)
        if (mask[r] == 0) diff.row(r).setZero();
      const double loss = scale * static_cast<double>(diff.squaredNorm());
      v.hidden += loss / o.hiddenWeight;
      v.total += loss;
      diff *= static_cast<float>(2.0 * scale);
      ensure(g.hidden[l], N, sc.hidden);
      if (projected) {
        const Eigen::Map<const Mat> W(extra + off, proj.rows, proj.cols);
        g.hidden[l].noalias() += diff * W;
        Eigen::Map<Mat>(gradExtra + off, proj.rows, proj.cols).noalias() += diff.transpose() * hs;
      } else {
        g.hidden[l] += diff;
      }
    }
  }

  if (o.logitWeight > 0 || o.lmWeight > 0) {
    Mat zs, logp, dz = Mat::Zero(N, sc.vocabSize);
    lmLogits(student, s, zs);
    if (o.logitWeight > 0 && teacher != nullptr) {
      Mat zt, logq;
      lmLogits(*teacher, *t, zt);
      const double tau = o.temperature;
      logSoftmax(zt, tau, logq);
      logSoftmax(zs, tau, logp);
      double loss = 0.0;
      const float k = static_cast<float>(o.logitWeight * tau / norm.rows);
      for (int r = 0; r < N; ++r) {
        if (mask[r] == 0) continue;
        for (int j = 0; j < sc.vocabSize; ++j) {
          const float q = std::exp(logq(r, j)), p = std::exp(logp(r, j));
          loss += q * (static_cast<double>(logq(r, j)) - logp(r, j));
          dz(r, j) += k * (p - q);
        }
      }
      loss *= o.logitWeight * tau * tau / norm.rows;
      v.logit += loss / o.logitWeight;
      v.total += loss;
    }
    if (o.lmWeight > 0 && norm.lmTokens > 0) {
      logSoftmax(zs, 1.0, logp);
      double loss = 0.0;
      const float k = static_cast<float>(o.lmWeight / norm.lmTokens);
      for (int b = 0; b < n; ++b)
        for (int i = 0; i + 1 < S; ++i) {
          const int r = b * S + i;
          if (mask[r] == 0 || mask[r + 1] == 0) continue;
          const int target = s.ids[static_cast<size_t>(r) + 1];
          loss -= logp(r, target);
          dz.row(r) += k * logp.row(r).array().exp().matrix();
          dz(r, target) -= k;
        }
      loss *= o.lmWeight / norm.lmTokens;
      v.lm += loss / o.lmWeight;
      v.total += loss;
    }
    lmLogitsBackward(student, s, dz, g.hidden[Ls - 1], gradParams);
  }
}

}  // namespace attn::distill
