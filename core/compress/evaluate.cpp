#include "core/compress/evaluate.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/attention/metrics.h"
#include "core/model/targets.h"

namespace attn::compress {

PlanSize planSize(const Model& base, const AppliedPlan& applied) {
  PlanSize s;
  s.before = floatBytes(base.weights);
  s.weights = s.before / 4;
  s.after = applied.quantized.empty() ? s.before : applied.bytesAfter;
  // Pruned matrices the quantizer did not store: bitmap + kept values instead of floats.
  for (const auto& p : applied.pruned) {
    const bool quantized = std::any_of(applied.quantized.begin(), applied.quantized.end(),
                                       [&](const quant::TensorReport& q) { return q.name == p.name; });
    if (!quantized) s.after -= p.bytes.dense - p.bytes.bitmap;
  }
  return s;
}

Result<quant::TensorReport> tensorStats(const Model& base, const AppliedPlan& applied,
                                        const std::string& name, int bins, ThreadPool* pool) {
  size_t k = 0;
  while (k < applied.quantized.size() && applied.quantized[k].name != name) ++k;
  if (k == applied.quantized.size()) return makeError(name + " is not quantized by the plan");
  if (applied.codes.size() != applied.quantized.size())
    return makeError("the applied plan kept no codes");
  const int layer = applied.quantized[k].layer;
  const Target target = applied.quantized[k].target;
  std::vector<float> source;
  ModelWeights copy = base.weights;
  Status st = editWeightMatrices(
      base.config, copy, [&](int l, Target t) { return l == layer && t == target; },
      [&](const WeightMatrix& wm, std::vector<float>& v) {
        if (wm.name == name) source = std::move(v);  // embeddings: three matrices, one target
        return Ok{};
      },
      /*store=*/false);
  if (!st) return st.error();
  for (const auto& p : applied.pruned)
    if (p.name == name && p.mask.size() == int64_t(source.size()))
      for (int64_t i = 0; i < p.mask.size(); ++i)
        if (!p.mask.get(i)) source[size_t(i)] = 0.0f;
  const quant::QuantizedTensor& q = *applied.codes[k];
  if (q.numel() != int64_t(source.size())) return makeError(applied.quantized[k].name + ": codes and weights differ in size");
  quant::TensorReport r = applied.quantized[k];
  r.stats = quant::errorStats(source.data(), q, bins, pool);
  return r;
}

double weightSparsity(const AppliedPlan& applied) {
  int64_t n = 0, zeros = 0;
  for (const auto& p : applied.pruned) {
    n += p.mask.size();
    zeros += p.mask.size() - p.mask.count();
  }
  return n > 0 ? double(zeros) / double(n) : 0.0;
}

int Reference::teacherSentences() const {
  return int(std::count_if(teacher.begin(), teacher.end(), [](const auto& t) { return t.has_value(); }));
}

Result<Reference> makeReference(const Model& student, const Model* teacher,
                                const std::vector<std::string>& texts,
                                const std::vector<int>& mapping, ThreadPool* pool,
                                const CancelToken* cancel, const std::function<void(int, int)>& progress) {
  if (!student.tokenizer) return makeError("the model has no tokenizer to read sentences with");
  Reference ref;
  ref.mapping = mapping;
  if (teacher != nullptr) {
    if (!teacher->tokenizer) teacher = nullptr;
    for (int t : mapping)
      if (teacher != nullptr && (t < 0 || t >= teacher->config.layers))
        return makeError("layer mapping names teacher layer " + std::to_string(t) + ", the teacher has " +
                         std::to_string(teacher->config.layers));
  }
  ForwardOptions fo;
  fo.pool = pool;
  fo.cancel = cancel;
  for (size_t i = 0; i < texts.size(); ++i) {
    if (cancel != nullptr && cancel->cancelled()) return makeError("cancelled");
    if (texts[i].find_first_not_of(" \t\r\n") == std::string::npos) continue;  // blank line
    auto ids = student.tokenizer->encode(texts[i]).ids;
    if (ids.size() > size_t(student.config.maxPositions)) ids.resize(size_t(student.config.maxPositions));
    if (ids.empty()) continue;
    auto s = forward(student.config, student.weights, ids, {}, fo);
    if (!s) return s.error();
    std::optional<ForwardResult> t;
    if (teacher != nullptr && !mapping.empty() && int(mapping.size()) == student.config.layers) {
      auto tid = teacher->tokenizer->encode(texts[i]).ids;
      if (tid.size() > size_t(teacher->config.maxPositions)) tid.resize(size_t(teacher->config.maxPositions));
      if (tid == ids) {
        auto got = forward(teacher->config, teacher->weights, tid, {}, fo);
        if (!got) return got.error();
        t = std::move(*got);
      }
    }
    ref.ids.push_back(std::move(ids));
    ref.student.push_back(std::move(*s));
    ref.teacher.push_back(std::move(t));
    if (progress) progress(int(i + 1), int(texts.size()));
  }
  if (ref.ids.empty()) return makeError("no sentence to measure on (all blank)");
  return ref;
}

double teacherKl(const ForwardResult& teacher, const ForwardResult& x, const std::vector<int>& mapping) {
  if (mapping.empty() || teacher.seq != x.seq) return kNoValue;
  const int S = x.seq;
  double sum = 0.0;
  int n = 0;
  for (int s = 0; s < int(mapping.size()) && s < x.layers; ++s) {
    const int t = mapping[size_t(s)];
    if (t < 0 || t >= teacher.layers) continue;
    if (teacher.heads == x.heads) {
      std::vector<float> buf;
      for (int h = 0; h < x.heads; ++h)
        sum += attentionKl(teacher.attentionMap(t, h), renormalisedRows(x.attentionMap(s, h), S, buf),
                           S);
      n += x.heads;
    } else {
      const auto a = headAverage(teacher.attentionMap(t, 0), teacher.heads, S);
      const auto b = headAverage(x.attentionMap(s, 0), x.heads, S);
      std::vector<float> buf;
      sum += attentionKl(a.data(), renormalisedRows(b.data(), S, buf), S);
      ++n;
    }
  }
  return n > 0 ? sum / n : kNoValue;
}

std::vector<double> teacherHeadKl(const ForwardResult& teacher, const ForwardResult& x,
                                  const std::vector<int>& mapping, ThreadPool* pool) {
  std::vector<double> out(size_t(x.layers) * size_t(x.heads), kNoValue);
  if (teacher.seq != x.seq) return out;
  const int S = x.seq;
  const int layers = std::min<int>(int(mapping.size()), x.layers);
  // One (layer, head) per task, each writing its own entry.
  auto one = [&](int64_t k) {
    const int s = int(k / x.heads), h = int(k % x.heads);
    const int t = mapping[size_t(s)];
    if (t < 0 || t >= teacher.layers) return;
    std::vector<float> avg;
    if (teacher.heads != x.heads) avg = headAverage(teacher.attentionMap(t, 0), teacher.heads, S);
    std::vector<float> buf;
    out[size_t(k)] = attentionKl(avg.empty() ? teacher.attentionMap(t, h) : avg.data(),
                                 renormalisedRows(x.attentionMap(s, h), S, buf), S);
  };
  const int64_t n = int64_t(layers) * x.heads;
  if (pool != nullptr)
    pool->run(n, one);
  else
    for (int64_t k = 0; k < n; ++k) one(k);
  return out;
}

double teacherKlFromHeads(const ForwardResult& teacher, const ForwardResult& x,
                          const std::vector<int>& mapping, const std::vector<double>& headKl) {
  if (teacher.heads != x.heads || mapping.empty() || teacher.seq != x.seq) return teacherKl(teacher, x, mapping);
  double sum = 0.0;
  int n = 0;
  for (int s = 0; s < int(mapping.size()) && s < x.layers; ++s) {
    const int t = mapping[size_t(s)];
    if (t < 0 || t >= teacher.layers) continue;
    for (int h = 0; h < x.heads; ++h) sum += headKl[size_t(s) * x.heads + h];
    n += x.heads;
  }
  return n > 0 ? sum / n : kNoValue;
}

Result<Evaluation> evaluatePlan(const Model& base, const AppliedPlan& applied,
                                const CompressionPlan& plan, const Reference& ref, ThreadPool* pool,
                                const CancelToken* cancel,
                                const std::function<void(const Evaluation&)>& partial) {
  const Model& m = *applied.model;
  Evaluation e;
  e.layers = m.config.layers;
  e.heads = m.config.heads;
  e.size = planSize(base, applied);
  e.weightSparsity = weightSparsity(applied);
  const size_t LH = size_t(e.layers) * size_t(e.heads);
  std::vector<double> kl(LH, 0.0), js(LH, 0.0);
  double klSum = 0.0, jsSum = 0.0, cosSum = 0.0, tSum = 0.0, tsSum = 0.0;
  int tN = 0;
  ForwardOptions fo;
  fo.pool = pool;
  fo.cancel = cancel;
  std::vector<sparse::SparsityCounts> counts;
  for (size_t i = 0; i < ref.ids.size(); ++i) {
    if (cancel != nullptr && cancel->cancelled()) return makeError("cancelled");
    ForwardOptions o = quant::withAttentionQuant(fo, plan.quant.attention);
    if (plan.prune.attention.active()) {
      counts.assign(LH, {});
      o = sparse::withAttentionSparsity(std::move(o), plan.prune.attention, &counts, e.heads);
    }
    auto got = forward(m.config, m.weights, ref.ids[i], {}, o);
    if (!got) return got.error();
    for (const auto& c : counts) e.attention.add(c);
    const Fidelity f = fidelity(ref.student[i], *got);
    for (size_t k = 0; k < LH && k < f.kl.size(); ++k) {
      kl[k] += f.kl[k];
      js[k] += f.js[k];
    }
    klSum += f.klMean;
    jsSum += f.jsMean;
    cosSum += f.hiddenCosine;
    if (ref.teacher[i]) {
      tSum += teacherKl(*ref.teacher[i], *got, ref.mapping);
      tsSum += teacherKl(*ref.teacher[i], ref.student[i], ref.mapping);
      ++tN;
    }
    e.sentences = int(i + 1);
    const double n = e.sentences;
    e.headKl.resize(LH);
    e.headJs.resize(LH);
    for (size_t k = 0; k < LH; ++k) {
      e.headKl[k] = kl[k] / n;
      e.headJs[k] = js[k] / n;
    }
    e.klMean = klSum / n;
    e.jsMean = jsSum / n;
    e.hiddenCosine = cosSum / n;
    if (tN > 0) {
      e.teacherKl = tSum / tN;
      e.studentTeacherKl = tsSum / tN;
    }
    if (partial) partial(e);
  }
  return e;
}

const char* sweepParamName(SweepParam p) {
  switch (p) {
    case SweepParam::Bits: return "bits";
    case SweepParam::Tau: return "tau";
    case SweepParam::Sparsity: return "sparsity";
  }
  return "?";
}

Result<SweepParam> parseSweepParam(const std::string& name) {
  for (SweepParam p : {SweepParam::Bits, SweepParam::Tau, SweepParam::Sparsity})
    if (name == sweepParamName(p)) return p;
  return makeError("unknown sweep parameter '" + name + "' (bits, tau or sparsity)");
}

namespace {
constexpr Target kLinear[] = {Target::Q, Target::K, Target::V, Target::O, Target::FfnIn, Target::FfnOut};
}

Result<CompressionPlan> withParam(CompressionPlan plan, SweepParam param, double value) {
  switch (param) {
    case SweepParam::Bits: {
      const int bits = int(std::lround(value));
      if (bits < 1 || bits > 8 || std::abs(value - bits) > 1e-9)
        return makeError("bits must be a whole number from 1 to 8, got " + std::to_string(value));
      auto setBits = [&](std::optional<quant::Spec>& s) -> Status {
        if (!s || s->method == quant::Method::Binary || s->method == quant::Method::Ternary) return Ok{};
        const auto& traits = quant::traits(s->method);
        if (bits < traits.minBits || bits > traits.maxBits)
          return makeError(std::string(traits.name) + " takes " + std::to_string(traits.minBits) + "–" +
                           std::to_string(traits.maxBits) + " bits, not " + std::to_string(bits));
        s->bits = bits;
        return Ok{};
      };
      if (!plan.quant.quantizesWeights())
        for (Target t : kLinear) plan.quant.targets[size_t(t)] = quant::Spec{};
      for (auto& s : plan.quant.targets)
        if (Status st = setBits(s); !st) return st.error();
      for (auto& o : plan.quant.overrides)
        if (Status st = setBits(o.spec); !st) return st.error();
      return plan;
    }
    case SweepParam::Tau: {
      if (!(value > 0.0) || value >= 1.0) return makeError("τ must be in (0, 1), got " + std::to_string(value));
      plan.prune.attention.all.kind = sparse::AttentionRule::Kind::Threshold;
      plan.prune.attention.all.tau = value;
      plan.prune.attention.overrides.clear();
      return plan;
    }
    case SweepParam::Sparsity: {
      if (!(value >= 0.0) || value >= 1.0) return makeError("sparsity must be in [0, 1), got " + std::to_string(value));
      if (!plan.prune.prunesWeights())
        for (Target t : kLinear) plan.prune.targets[size_t(t)] = sparse::PruneSpec{};
      for (auto& s : plan.prune.targets)
        if (s) s->sparsity = value;
      return plan;
    }
  }
  return plan;
}

Result<std::vector<SweepPoint>> sweep(const Model& base, const CompressionPlan& plan,
                                      const std::vector<SweepAxis>& axes, const Reference& ref,
                                      ThreadPool* pool, const CancelToken* cancel,
                                      const std::function<void(const SweepPoint&, int, int)>& onPoint) {
  if (axes.empty() || axes.size() > 2) return makeError("a sweep varies one or two parameters");
  size_t total = 1;
  for (const auto& a : axes) {
    if (a.values.empty()) return makeError(std::string("no values for ") + sweepParamName(a.param));
    total *= a.values.size();
  }
  if (axes.size() == 2 && axes[0].param == axes[1].param)
    return makeError(std::string("both axes vary ") + sweepParamName(axes[0].param));
  std::vector<SweepPoint> out;
  // Consecutive points often share their weights (an attention τ axis inside a bits
  // axis): the previous point's compressed weights are reused, or re-quantized only
  // where the specs differ.
  std::shared_ptr<const AppliedPlan> previous;
  CompressionPlan previousPlan;
  auto weightsKey = [](CompressionPlan p) {
    p.student.clear();
    p.quant.attention = {};
    p.prune.attention = {};
    return planJson(p);
  };
  for (size_t i = 0; i < total; ++i) {
    if (cancel != nullptr && cancel->cancelled()) return makeError("cancelled");
    SweepPoint p;
    p.plan = plan;
    size_t rest = i;
    std::vector<size_t> index(axes.size());
    for (size_t a = axes.size(); a-- > 0;) {
      index[a] = rest % axes[a].values.size();
      rest /= axes[a].values.size();
    }
    for (size_t a = 0; a < axes.size(); ++a) {
      const double v = axes[a].values[index[a]];
      p.values.push_back(v);
      auto next = withParam(std::move(p.plan), axes[a].param, v);
      if (!next) return next.error();
      p.plan = std::move(*next);
    }
    if (!previous || weightsKey(previousPlan) != weightsKey(p.plan)) {
      auto applied = previous ? reapplyPlan(base, *previous, previousPlan, p.plan, pool, cancel, false)
                              : applyPlan(base, p.plan, pool, cancel, false, /*histograms=*/false);
      if (!applied) return applied.error();
      previous = std::make_shared<const AppliedPlan>(std::move(*applied));
    }
    previousPlan = p.plan;
    auto e = evaluatePlan(base, *previous, p.plan, ref, pool, cancel);
    if (!e) return e.error();
    p.eval = std::move(*e);
    out.push_back(std::move(p));
    if (onPoint) onPoint(out.back(), int(i), int(total));
  }
  return out;
}

std::vector<int> paretoFront(const std::vector<double>& x, const std::vector<double>& y) {
  std::vector<int> order;
  for (int i = 0; i < int(std::min(x.size(), y.size())); ++i)
    if (std::isfinite(x[size_t(i)]) && std::isfinite(y[size_t(i)])) order.push_back(i);
  std::sort(order.begin(), order.end(), [&](int a, int b) {
    return x[size_t(a)] != x[size_t(b)] ? x[size_t(a)] < x[size_t(b)] : y[size_t(a)] < y[size_t(b)];
  });
  std::vector<int> front;
  double best = std::numeric_limits<double>::infinity();
  for (int i : order)
    if (y[size_t(i)] < best) {  // strictly better y than every point with x ≤ this x
      front.push_back(i);
      best = y[size_t(i)];
    }
  return front;
}

}  // namespace attn::compress
