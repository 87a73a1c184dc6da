#include "core/sparse/attention_sparsity.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/attention/metrics.h"

namespace attn::sparse {

namespace {
const double kLogEps = std::log(1e-12);  // attentionKl's clamp
}

Status validate(const AttentionRule& r) {
  switch (r.kind) {
    case AttentionRule::Kind::None:
      return Ok{};
    case AttentionRule::Kind::Threshold:
      if (!(r.tau >= 0.0 && r.tau <= 1.0))
        return makeError("the attention threshold τ must be in [0, 1], not " +
                         std::to_string(r.tau));
      return Ok{};
    case AttentionRule::Kind::TopK:
      if (r.k < 1) return makeError("top-k needs k ≥ 1, not " + std::to_string(r.k));
      return Ok{};
    case AttentionRule::Kind::Mass:
      if (!(r.mass > 0.0 && r.mass <= 1.0))
        return makeError("the kept attention mass must be in (0, 1], not " +
                         std::to_string(r.mass));
      return Ok{};
  }
  return Ok{};
}

const AttentionRule& AttentionPlan::ruleFor(int layer, int head) const {
  const AttentionRule* r = &all;
  for (const Override& o : overrides)
    if (o.layer == layer && (o.head < 0 || o.head == head)) r = &o.rule;
  return *r;
}

bool AttentionPlan::active() const {
  if (all.kind != AttentionRule::Kind::None) return true;
  for (const Override& o : overrides)
    if (o.rule.kind != AttentionRule::Kind::None) return true;
  return false;
}

SparsityCounts sparsifyMap(float* p, int S, const AttentionRule& rule) {
  SparsityCounts c;
  std::vector<int> order;
  for (int i = 0; i < S; ++i) {
    float* row = p + size_t(i) * S;
    ++c.rows;
    if (rule.kind == AttentionRule::Kind::Threshold) {  // one fused pass
      double kept = 0.0;
      int64_t dense = 0, n = 0;
      for (int j = 0; j < S; ++j) {
        const float x = row[j];
        dense += x > 0.0f;
        const bool keep = double(x) >= rule.tau && x > 0.0f;
        row[j] = keep ? x : 0.0f;
        kept += keep ? double(x) : 0.0;
        n += keep;
      }
      c.dense += dense;
      c.kept += n;
      c.mass += kept;
      if (rule.renormalize && kept > 0.0)
        for (int j = 0; j < S; ++j) row[j] = float(row[j] / kept);
      continue;
    }
    int64_t dense = 0;
    for (int j = 0; j < S; ++j) dense += row[j] > 0.0f;
    c.dense += dense;
    switch (rule.kind) {
      case AttentionRule::Kind::None:
      case AttentionRule::Kind::Threshold:
        break;
      case AttentionRule::Kind::TopK:
      case AttentionRule::Kind::Mass: {
        // Keys by probability, largest first; ties: the lower key index first.
        order.resize(size_t(S));
        std::iota(order.begin(), order.end(), 0);
        auto before = [row](int a, int b) {
          return row[a] > row[b] || (row[a] == row[b] && a < b);
        };
        int keep = 0;
        if (rule.kind == AttentionRule::Kind::TopK) {
          keep = std::min(rule.k, S);
          std::partial_sort(order.begin(), order.begin() + keep, order.end(), before);
        } else {
          std::sort(order.begin(), order.end(), before);
          double sum = 0.0;
          while (keep < S && sum < rule.mass && row[order[size_t(keep)]] > 0.0f)
            sum += row[order[size_t(keep++)]];
        }
        for (int r = keep; r < S; ++r) row[order[size_t(r)]] = 0.0f;
        break;
      }
    }
    double kept = 0.0;
    int64_t n = 0;
    for (int j = 0; j < S; ++j)
      if (row[j] > 0.0f) kept += row[j], ++n;
    c.kept += n;
    c.mass += kept;
    if (rule.renormalize && kept > 0.0)
      for (int j = 0; j < S; ++j) row[j] = float(row[j] / kept);
  }
  return c;
}

ForwardOptions withAttentionSparsity(ForwardOptions options, const AttentionPlan& plan,
                                     std::vector<SparsityCounts>* counts, int heads) {
  if (!plan.active()) return options;
  auto previous = options.attentionTransform;  // e.g. attention quantization runs first
  options.attentionTransform = [plan, counts, heads, previous](int layer, int head, float* p,
                                                               int seq) {
    if (previous) previous(layer, head, p, seq);
    const SparsityCounts c = sparsifyMap(p, seq, plan.ruleFor(layer, head));
    const size_t at = size_t(layer) * size_t(heads) + size_t(head);
    if (counts != nullptr && at < counts->size()) (*counts)[at] = c;
  };
  return options;
}

Preview preview(const ForwardResult& dense, const AttentionPlan& plan, ThreadPool* pool) {
  Preview pv;
  pv.sparse.layers = dense.layers;
  pv.sparse.heads = dense.heads;
  pv.sparse.seq = dense.seq;
  pv.sparse.attention = dense.attention;
  const int64_t maps = int64_t(dense.layers) * dense.heads;
  const int S = dense.seq;
  pv.counts.assign(size_t(maps), {});
  pv.kl.assign(size_t(maps), 0.0);
  auto one = [&](int64_t m) {
    const int l = int(m / dense.heads), h = int(m % dense.heads);
    float* p = pv.sparse.attention.data() + size_t(m) * S * S;
    const AttentionRule& rule = plan.ruleFor(l, h);
    pv.counts[size_t(m)] = sparsifyMap(p, S, rule);
    // KL(dense ‖ kept entries renormalised), row by row in closed form: a kept
    // entry's ratio is the row's kept mass K, so the kept part is K·ln K; a
    // dropped one costs p·ln(p / ε) with ε = 1e-12, as attentionKl clamps.
    const float* d = dense.attentionMap(l, h);
    double kl = 0.0;
    for (int i = 0; i < S; ++i) {
      double kept = 0.0, dropped = 0.0;
      for (int j = 0; j < S; ++j) {
        const float x = d[size_t(i) * S + j];
        if (x <= 0.0f) continue;
        if (p[size_t(i) * S + j] > 0.0f)
          kept += x;
        else  // float log: 1 ulp is plenty for a statistic, and it is much faster
          dropped += double(x) * (double(std::log(x)) - kLogEps);
      }
      kl += (kept > 0.0 ? kept * std::log(kept) : 0.0) + dropped;
    }
    pv.kl[size_t(m)] = kl / S;
  };
  if (pool != nullptr)
    pool->run(maps, one);
  else
    for (int64_t m = 0; m < maps; ++m) one(m);
  for (int64_t m = 0; m < maps; ++m) {
    pv.total.add(pv.counts[size_t(m)]);
    pv.klMean += pv.kl[size_t(m)] / double(std::max<int64_t>(1, maps));
  }
  return pv;
}

std::vector<ThresholdPoint> thresholdCurve(const ForwardResult& dense, const std::vector<double>& taus,
                                           ThreadPool* pool) {
  const size_t T = taus.size();
  const int64_t maps = int64_t(dense.layers) * dense.heads;
  const int S = dense.seq;
  // Per map and τ: kept and non-zero entries, and the summed per-row KL.
  std::vector<int64_t> kept(size_t(maps) * T, 0), nonZero(size_t(maps), 0);
  std::vector<double> kl(size_t(maps) * T, 0.0);
  auto one = [&](int64_t m) {
    const float* d = dense.attention.data() + size_t(m) * S * S;
    // An entry x > 0 is kept for the τ below or at it: bin j = how many τ ≤ x;
    // it is dropped for τ_k with k ≥ j. Per row: bins, then prefix sums over k.
    std::vector<int64_t> cnt(T + 1);
    std::vector<double> mass(T + 1), cost(T + 1);
    for (int i = 0; i < S; ++i) {
      std::fill(cnt.begin(), cnt.end(), 0);
      std::fill(mass.begin(), mass.end(), 0.0);
      std::fill(cost.begin(), cost.end(), 0.0);
      for (int j = 0; j < S; ++j) {
        const float x = d[size_t(i) * S + j];
        if (!(x > 0.0f)) continue;
        size_t bin = 0;  // a branch-free count: a binary search mispredicts on every entry
        for (size_t k = 0; k < T; ++k) bin += taus[k] <= double(x);
        ++cnt[bin];
        mass[bin] += x;
        cost[bin] += double(x) * (double(std::log(x)) - kLogEps);  // as preview's dropped entries
        ++nonZero[size_t(m)];
      }
      // At τ_k bins 0..k are dropped and bins k+1..T kept: the kept sums from the
      // top down (summed as preview sums them, smallest entries last), the dropped
      // cost from the bottom up.
      double keptMass = 0.0, dropped = 0.0;
      int64_t keptCount = 0;
      for (size_t k = T; k-- > 0;) {
        keptMass += mass[k + 1];
        keptCount += cnt[k + 1];
        kl[size_t(m) * T + k] += keptMass > 0.0 ? keptMass * std::log(keptMass) : 0.0;
        kept[size_t(m) * T + k] += keptCount;
      }
      for (size_t k = 0; k < T; ++k) {
        dropped += cost[k];
        kl[size_t(m) * T + k] += dropped;
      }
    }
  };
  if (pool != nullptr)
    pool->run(maps, one);
  else
    for (int64_t m = 0; m < maps; ++m) one(m);
  std::vector<ThresholdPoint> out(T);
  int64_t dense_ = 0;
  for (int64_t m = 0; m < maps; ++m) dense_ += nonZero[size_t(m)];
  for (size_t k = 0; k < T; ++k) {
    int64_t keptAll = 0;
    double klMean = 0.0;
    for (int64_t m = 0; m < maps; ++m) {
      keptAll += kept[size_t(m) * T + k];
      klMean += kl[size_t(m) * T + k] / S / double(std::max<int64_t>(1, maps));
    }
    out[k].tau = taus[k];
    out[k].sparsity = dense_ > 0 ? 1.0 - double(keptAll) / double(dense_) : 0.0;
    out[k].klMean = klMean;
  }
  return out;
}

}  // namespace attn::sparse
