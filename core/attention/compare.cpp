#include "core/attention/compare.h"

#include "core/util/parallel.h"

#include <algorithm>
#include <cmath>

namespace attn {

std::vector<int> uniformLayerMap(int studentLayers, int teacherLayers) {
  std::vector<int> map(std::max(0, studentLayers));
  if (teacherLayers <= 0) return map;
  for (int j = 0; j < studentLayers; ++j) {
    const double t = std::floor(double(j + 1) * teacherLayers / studentLayers + 0.5) - 1.0;
    map[j] = std::clamp(int(t), 0, teacherLayers - 1);
  }
  return map;
}

std::vector<float> headAverage(const float* attention, int heads, int seq) {
  const size_t n = size_t(seq) * seq;
  std::vector<double> sum(n, 0.0);
  for (int h = 0; h < heads; ++h)
    for (size_t i = 0; i < n; ++i) sum[i] += attention[h * n + i];
  std::vector<float> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = heads > 0 ? float(sum[i] / heads) : 0.0f;
  return out;
}

}  // namespace attn

#include <limits>

#include "core/attention/metrics.h"
#include "core/model/transformer.h"
#include "core/util/lane_sum.h"

namespace attn {

LossMatrix lossMatrix(const ForwardResult& t, const ForwardResult& s,
                      const std::vector<uint8_t>& rows) {
  LossMatrix m;
  m.teacherLayers = t.layers;
  m.studentLayers = s.layers;
  m.studentHeads = s.heads;
  m.mse.assign(size_t(t.layers) * s.layers, 0.0);
  m.kl.assign(m.mse.size(), 0.0);
  m.headMse.assign(m.mse.size() * s.heads, 0.0);
  m.headKl.assign(m.headMse.size(), 0.0);
  if (t.seq != s.seq || t.seq == 0) return m;
  const int S = t.seq;
  const bool perHead = t.heads == s.heads;
  for (int lt = 0; lt < t.layers; ++lt) {
    const std::vector<float> tAvg = headAverage(t.attentionMap(lt, 0), t.heads, S);
    for (int ls = 0; ls < s.layers; ++ls) {
      const size_t at = size_t(lt) * s.layers + ls;
      double mse = 0.0, kl = 0.0;
      for (int h = 0; h < s.heads; ++h) {
        const float* a = perHead ? t.attentionMap(lt, h) : tAvg.data();
        const float* b = s.attentionMap(ls, h);
        m.headMse[at * s.heads + h] = attentionMse(a, b, S, rows);
        m.headKl[at * s.heads + h] = attentionKl(a, b, S, rows);
        mse += m.headMse[at * s.heads + h];
        kl += m.headKl[at * s.heads + h];
      }
      if (perHead) {
        m.mse[at] = mse / s.heads;
        m.kl[at] = kl / s.heads;
      } else {  // different head counts: compare the head-averaged maps
        const std::vector<float> sAvg = headAverage(s.attentionMap(ls, 0), s.heads, S);
        m.mse[at] = attentionMse(tAvg.data(), sAvg.data(), S, rows);
        m.kl[at] = attentionKl(tAvg.data(), sAvg.data(), S, rows);
      }
    }
  }
  return m;
}

std::vector<int> bestMonotoneMap(const std::vector<double>& loss, int T, int S) {
  std::vector<int> map(std::max(0, S), 0);
  if (T <= 0 || S <= 0) return map;
  // cost[s][t]: best total for student layers 0..s with student s ↔ teacher t.
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> cost(size_t(S) * T, inf);
  std::vector<int> from(size_t(S) * T, 0);
  for (int t = 0; t < T; ++t) cost[t] = loss[size_t(t) * S];
  for (int s = 1; s < S; ++s) {
    double best = inf;
    int arg = 0;
    for (int t = 0; t < T; ++t) {  // running minimum over teacher layers ≤ t
      if (cost[size_t(s - 1) * T + t] < best) best = cost[size_t(s - 1) * T + t], arg = t;
      cost[size_t(s) * T + t] = best + loss[size_t(t) * S + s];
      from[size_t(s) * T + t] = arg;
    }
  }
  int t = 0;
  for (int k = 1; k < T; ++k)
    if (cost[size_t(S - 1) * T + k] < cost[size_t(S - 1) * T + t]) t = k;
  for (int s = S - 1; s >= 0; --s) {
    map[s] = t;
    t = from[size_t(s) * T + t];
  }
  return map;
}

const float* renormalisedRows(const float* p, int S, std::vector<float>& buf) {
  constexpr double kRowSumSlack = 1e-5;  // float32 softmax rows sum to 1 within this
  bool copied = false;
  for (int i = 0; i < S; ++i) {
    const float* row = p + size_t(i) * S;
    const double sum = laneSum(S, [&](int64_t j) { return double(row[j]); });
    if (std::fabs(sum - 1.0) <= kRowSumSlack) {  // a softmax row already
      if (copied) std::copy(row, row + S, buf.begin() + ptrdiff_t(i) * S);
      continue;
    }
    if (!copied) {  // the rows so far as they are
      buf.resize(size_t(S) * S);
      std::copy(p, row, buf.begin());
      copied = true;
    }
    for (int j = 0; j < S; ++j) buf[size_t(i) * S + j] = sum > 0 ? float(row[j] / sum) : 0.0f;
  }
  return copied ? buf.data() : p;
}

Fidelity fidelity(const ForwardResult& ref, const ForwardResult& x, ThreadPool* pool) {
  Fidelity f;
  f.layers = ref.layers;
  f.heads = ref.heads;
  if (ref.layers != x.layers || ref.heads != x.heads || ref.seq != x.seq) return f;
  const int S = ref.seq;
  const size_t maps = size_t(ref.layers) * ref.heads;
  f.kl.resize(maps);
  f.js.resize(maps);
  f.mse.resize(maps);
  // One map per task; the means are summed afterwards in map order, so the
  // result does not depend on the pool.
  auto one = [&](int64_t m, std::vector<float>& norm) {
    const float* a = ref.attention.data() + size_t(m) * S * S;
    const float* b = x.attention.data() + size_t(m) * S * S;
    const KlJs d = attentionKlJs(a, renormalisedRows(b, S, norm), S);
    f.kl[size_t(m)] = d.kl;
    f.js[size_t(m)] = d.js;
    f.mse[size_t(m)] = attentionMse(a, b, S);
  };
  if (pool != nullptr) {
    pool->chunks(int64_t(maps), [&](int64_t begin, int64_t end) {
      std::vector<float> norm;
      for (int64_t m = begin; m < end; ++m) one(m, norm);
    });
  } else {
    std::vector<float> norm;
    for (size_t m = 0; m < maps; ++m) one(int64_t(m), norm);
  }
  for (size_t m = 0; m < maps; ++m) {
    f.klMean += f.kl[m] / double(maps);
    f.jsMean += f.js[m] / double(maps);
    f.mseMean += f.mse[m] / double(maps);
  }
  f.hiddenCosine = hiddenCosine(ref, x);
  return f;
}

double hiddenCosine(const ForwardResult& ref, const ForwardResult& x) {
  const int D = ref.hidden, S = ref.seq;
  if (D <= 0 || S <= 0 || ref.lastHidden.size() != x.lastHidden.size()) return 1.0;
  double cos = 0.0;
  for (int i = 0; i < S; ++i) {
    double dot = 0.0, na = 0.0, nb = 0.0;
    for (int d = 0; d < D; ++d) {
      const double u = ref.lastHidden[size_t(i) * D + d], v = x.lastHidden[size_t(i) * D + d];
      dot += u * v;
      na += u * u;
      nb += v * v;
    }
    cos += na > 0 && nb > 0 ? dot / std::sqrt(na * nb) : (na == nb ? 1.0 : 0.0);
  }
  return cos / S;
}

}  // namespace attn
