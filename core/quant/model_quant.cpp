#include "core/quant/model_quant.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "core/attention/compare.h"

namespace attn::quant {

namespace {
std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, sep)) out.push_back(trim(item));
  return out;
}

Result<int> parseCount(const std::string& s, const std::string& what) {
  char* end = nullptr;
  const long v = std::strtol(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || v < 0 || v > 100000)
    return makeError(what + " '" + s + "' is not a non-negative integer");
  return int(v);
}

// "method:bits[:granularity][:asym]" or "none".
Result<std::optional<Spec>> parseSpecText(const std::string& text) {
  if (text == "none") return std::optional<Spec>();
  const auto parts = split(text, ':');
  if (parts.size() < 2) return makeError("'" + text + "': expected method:bits, e.g. uniform:4");
  Spec s;
  auto m = parseMethod(parts[0]);
  if (!m) return m.error();
  s.method = *m;
  auto b = parseCount(parts[1], "bits");
  if (!b) return b.error();
  s.bits = *b;
  size_t i = 2;
  if (i < parts.size() && parts[i] != "asym") {
    std::string g = parts[i++];
    if (g == "group" && i < parts.size()) g += ":" + parts[i++];
    auto sp = parseGranularity(g, s);
    if (!sp) return sp.error();
    s = *sp;
  }
  if (i < parts.size() && parts[i] == "asym") {
    s.symmetric = false;
    ++i;
  }
  if (i != parts.size()) return makeError("'" + text + "': unexpected '" + parts[i] + "'");
  return std::optional<Spec>(s);
}
}  // namespace

Status applyPlanText(const std::string& text, ModelQuantPlan& plan) {
  ModelQuantPlan out = plan;
  for (const std::string& entry : split(text, ';')) {
    if (entry.empty()) continue;
    const size_t eq = entry.find('=');
    if (eq == std::string::npos)
      return makeError("'" + entry + "': expected targets=spec, e.g. ffn_in=uniform:4");
    std::string lhs = trim(entry.substr(0, eq));
    int first = -1, last = -1;
    if (lhs.rfind("layers ", 0) == 0 || lhs.rfind("layer ", 0) == 0) {
      const bool range = lhs.rfind("layers ", 0) == 0;
      std::string rest = trim(lhs.substr(range ? 7 : 6));
      const size_t sp = rest.find(' ');
      if (sp == std::string::npos) return makeError("'" + entry + "': no targets after the layer");
      const std::string which = rest.substr(0, sp);
      lhs = trim(rest.substr(sp + 1));
      const size_t dash = which.find('-');
      auto a =
          parseCount(range && dash != std::string::npos ? which.substr(0, dash) : which, "layer");
      if (!a) return a.error();
      first = last = *a;
      if (range) {
        if (dash == std::string::npos) return makeError("'" + which + "': expected layers A-B");
        auto b = parseCount(which.substr(dash + 1), "layer");
        if (!b) return b.error();
        last = *b;
        if (last < first) return makeError("'" + which + "': the range is empty");
      }
    }
    auto targets = parseTargets(lhs);
    if (!targets) return targets.error();
    auto spec = parseSpecText(trim(entry.substr(eq + 1)));
    if (!spec) return spec.error();
    if (*spec)
      if (Status st = validate(**spec, 1,
                               (*spec)->granularity == Granularity::Group ? (*spec)->groupSize : 1);
          !st)
        return st.error();
    for (Target t : *targets) {
      if (first < 0) {
        out.targets[size_t(t)] = *spec;
        // A later spec for every layer replaces earlier per-layer entries of the target.
        std::erase_if(out.overrides,
                      [t](const ModelQuantPlan::Override& o) { return o.target == t; });
      } else {
        for (int l = first; l <= last; ++l) out.overrides.push_back({l, t, *spec});
      }
    }
  }
  plan = std::move(out);
  return Ok{};
}

std::string specText(const std::optional<Spec>& s) {
  if (!s) return "none";
  std::string t = std::string(traits(s->method).name) + ":" + std::to_string(s->bits) + ":" +
                  granularityName(s->granularity);
  if (s->granularity == Granularity::Group) t += ":" + std::to_string(s->groupSize);
  if (s->method == Method::Uniform && !s->symmetric) t += ":asym";
  return t;
}

std::string planText(const ModelQuantPlan& plan, bool withTargets) {
  std::vector<std::string> entries;
  if (withTargets)
    for (int t = 0; t < kTargetCount; ++t)
      entries.push_back(std::string(kTargetNames[t]) + "=" + specText(plan.targets[size_t(t)]));
  for (const auto& o : plan.overrides)
    entries.push_back((o.layer >= 0 ? "layer " + std::to_string(o.layer) + " " : std::string()) +
                      kTargetNames[int(o.target)] + "=" + specText(o.spec));
  std::string out;
  for (const auto& e : entries) out += (out.empty() ? "" : "; ") + e;
  return out;
}

Status validate(const AttentionQuant& a) {
  if (a.kind == AttentionQuant::Kind::Uniform || a.kind == AttentionQuant::Kind::Log2)
    if (a.bits < 1 || a.bits > 8)
      return makeError("attention probabilities take 1–8 bits, not " + std::to_string(a.bits));
  if (a.kind == AttentionQuant::Kind::Binary && !(a.threshold > 0.0f && a.threshold <= 1.0f))
    return makeError("the binary attention threshold must be in (0, 1]");
  return Ok{};
}

void quantizeProbabilities(float* p, int64_t n, const AttentionQuant& a) {
  switch (a.kind) {
    case AttentionQuant::Kind::None:
      return;
    case AttentionQuant::Kind::Uniform: {
      const float s = 1.0f / float((1 << a.bits) - 1), inv = 1.0f / s;
      for (int64_t i = 0; i < n; ++i) p[i] = s * std::nearbyint(p[i] * inv);
      return;
    }
    case AttentionQuant::Kind::Log2: {
      const int kmax = (1 << a.bits) - 2;
      for (int64_t i = 0; i < n; ++i) {
        if (!(p[i] > 0.0f)) {
          p[i] = 0.0f;
          continue;
        }
        const int k = std::max(0, int(std::nearbyint(-std::log2(double(p[i])))));
        p[i] = k > kmax ? 0.0f : std::ldexp(1.0f, -k);
      }
      return;
    }
    case AttentionQuant::Kind::Binary:
      for (int64_t i = 0; i < n; ++i) p[i] = p[i] >= a.threshold ? 1.0f : 0.0f;
      return;
  }
}

std::optional<Spec> ModelQuantPlan::specFor(int layer, Target t) const {
  std::optional<Spec> s = targets[size_t(t)];
  for (const Override& o : overrides)
    if (o.target == t && (o.layer == layer || t == Target::Emb)) s = o.spec;
  return s;
}

bool ModelQuantPlan::quantizesWeights() const {
  for (const auto& t : targets)
    if (t) return true;
  for (const Override& o : overrides)
    if (o.spec) return true;
  return false;
}

ForwardOptions withAttentionQuant(ForwardOptions options, const AttentionQuant& a) {
  if (a.kind != AttentionQuant::Kind::None)
    options.attentionTransform = [a](int, int, float* p, int seq) {
      quantizeProbabilities(p, int64_t(seq) * seq, a);
    };
  return options;
}

namespace {

class Quantizer {
 public:
  Quantizer(const QuantizeModelOptions& o, QuantizedModel& out) : o_(o), out_(out) {}

  // Quantizes rows [r0, r1) of m ([rows, cols]) in place (dequantized values).
  Status run(std::vector<float>& m, int64_t r0, int64_t r1, int64_t cols, const Spec& spec,
             std::string name, Target target, int layer) {
    if (isCancelled(o_.cancel)) return makeError("cancelled");
    float* rows = m.data() + r0 * cols;
    TensorReport rep{name, target, layer, spec, {}};
    if (o_.histogramBins == 0) {  // one pass, rows overwritten in place
      auto q = quantizeInto(rows, r1 - r0, cols, spec, rows, rep.stats, o_.pool);
      if (!q) return makeError(name + ": " + q.message());
      return keep(std::move(rep), std::move(*q));
    }
    auto q = quantize(rows, r1 - r0, cols, spec, o_.pool);
    if (!q) return makeError(name + ": " + q.message());
    std::vector<float> deq = q->dequantize();
    rep.stats = errorStats(rows, *q, deq, o_.histogramBins, o_.pool);
    if (r0 == 0 && int64_t(m.size()) == r1 * cols)
      m = std::move(deq);  // the whole matrix: no copy
    else
      std::copy(deq.begin(), deq.end(), rows);
    return keep(std::move(rep), std::move(*q));
  }

  // The same for a whole matrix read where it is stored (wm.stored): the
  // dequantized values go into a new tensor (*wm.replacement), or into m with
  // histograms; the source is not copied.
  Status runBorrowed(const WeightMatrix& wm, std::vector<float>& m, const Spec& spec) {
    if (isCancelled(o_.cancel)) return makeError("cancelled");
    TensorReport rep{wm.name, wm.target, wm.layer, spec, {}};
    if (o_.histogramBins == 0) {
      Tensor out = Tensor::uninitializedF32({wm.rows, wm.cols});
      auto q = quantizeInto(wm.stored, wm.rows, wm.cols, spec, out.mutableF32(), rep.stats, o_.pool);
      if (!q) return makeError(wm.name + ": " + q.message());
      *wm.replacement = std::move(out);
      return keep(std::move(rep), std::move(*q));
    }
    auto q = quantize(wm.stored, wm.rows, wm.cols, spec, o_.pool);
    if (!q) return makeError(wm.name + ": " + q.message());
    m = q->dequantize();
    rep.stats = errorStats(wm.stored, *q, m, o_.histogramBins, o_.pool);
    return keep(std::move(rep), std::move(*q));
  }

 private:
  Status keep(TensorReport rep, QuantizedTensor q) {
    out_.bytesAfter += rep.stats.bytesAfter - rep.stats.bytesBefore;
    out_.tensors.push_back(std::move(rep));
    if (o_.keepCodes) out_.codes.push_back(std::move(q));
    return Ok{};
  }

  const QuantizeModelOptions& o_;
  QuantizedModel& out_;
};

}  // namespace

double bitsPerQuantizedWeight(const std::vector<TensorReport>& reports) {
  double bits = 0.0, weights = 0.0;
  for (const auto& t : reports) {
    const double n = double(t.stats.bytesBefore) / 4.0;  // float32 bytes → weights
    bits += t.stats.bitsPerWeight * n;
    weights += n;
  }
  return weights > 0 ? bits / weights : 32.0;
}

Result<QuantizedModel> quantizeModel(const Model& base, const ModelQuantPlan& plan,
                                     const QuantizeModelOptions& options) {
  if (Status st = validate(plan.attention); !st) return st.error();
  QuantizedModel out;
  auto m = derivedModel(base);
  out.bytesBefore = out.bytesAfter = floatBytes(base.weights);
  Quantizer qz(options, out);
  int finalUpTo = -2;  // every matrix before the one being edited has been stored
  auto reached = [&](int upTo) {
    if (!options.stored || upTo <= finalUpTo) return;
    finalUpTo = upTo;
    options.stored(*m, upTo);
  };
  const Status st = editWeightMatrices(
      m->config, m->weights,
      [&](int layer, Target t) { return plan.specFor(layer, t).has_value(); },
      [&](const WeightMatrix& wm, std::vector<float>& v) {
        reached(wm.layer - 1);
        const Spec spec = *plan.specFor(wm.layer, wm.target);
        Status st = wm.stored != nullptr
                        ? qz.runBorrowed(wm, v, spec)
                        : qz.run(v, 0, wm.rows, wm.cols, spec, wm.name, wm.target, wm.layer);
        if (st && options.consumed) options.consumed(wm.layer, wm.target);
        return st;
      },
      /*store=*/true, /*values=*/true, /*borrow=*/true);
  if (!st) return st.error();
  reached(m->config.layers);
  out.model = std::move(m);
  return out;
}

Result<std::vector<Sensitivity>> sensitivityScan(const Model& base, const ModelQuantPlan& plan,
                                                 std::span<const int32_t> ids, SensitivityBy by,
                                                 const QuantizeModelOptions& options,
                                                 const std::function<void(int, int)>& progress) {
  ForwardOptions fo;
  fo.pool = options.pool;
  fo.cancel = options.cancel;
  auto ref = forward(base.config, base.weights, ids, {}, fo);
  if (!ref) return ref.error();
  const int L = base.config.layers;
  const int total = by == SensitivityBy::Layer ? L : kTargetCount;
  std::vector<Sensitivity> out;
  QuantizeModelOptions qo = options;
  qo.keepCodes = false;
  for (int i = 0; i < total; ++i) {
    if (isCancelled(options.cancel)) return makeError("cancelled");
    ModelQuantPlan one;  // only layer i (or only target i) of the plan
    Sensitivity s;
    if (by == SensitivityBy::Layer) {
      for (int t = 0; t < kTargetCount - 1; ++t)  // embeddings belong to no layer
        one.overrides.push_back({i, Target(t), plan.specFor(i, Target(t))});
      s.label = "layer " + std::to_string(i);
      s.layer = i;
    } else {
      for (int l = 0; l < L; ++l)
        one.overrides.push_back({l, Target(i), plan.specFor(l, Target(i))});
      s.label = kTargetNames[i];
      s.target = i;
    }
    auto qm = quantizeModel(base, one, qo);
    if (!qm) return qm.error();
    ForwardOptions f = fo;
    if (by == SensitivityBy::Layer && plan.attention.kind != AttentionQuant::Kind::None) {
      const AttentionQuant a = plan.attention;
      f.attentionTransform = [a, i](int layer, int, float* p, int seq) {
        if (layer == i) quantizeProbabilities(p, int64_t(seq) * seq, a);
      };
    }
    auto r = forward(qm->model->config, qm->model->weights, ids, {}, f);
    if (!r) return r.error();
    const Fidelity fid = fidelity(*ref, *r);
    s.attentionKl = fid.klMean;
    s.attentionJs = fid.jsMean;
    s.hiddenCosine = fid.hiddenCosine;
    out.push_back(std::move(s));
    if (progress) progress(i + 1, total);
  }
  std::stable_sort(out.begin(), out.end(), [](const Sensitivity& a, const Sensitivity& b) {
    return a.attentionKl > b.attentionKl;
  });
  return out;
}

}  // namespace attn::quant
