#include "core/compress/plan.h"

#include <algorithm>
#include <array>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "core/io/atomic_file.h"

namespace attn::compress {

namespace {

using Json = nlohmann::ordered_json;
constexpr const char* kFormat = "attnstudio-compression-plan";

const char* attentionQuantName(quant::AttentionQuant::Kind k) {
  switch (k) {
    case quant::AttentionQuant::Kind::None: return "none";
    case quant::AttentionQuant::Kind::Uniform: return "uniform";
    case quant::AttentionQuant::Kind::Log2: return "log2";
    case quant::AttentionQuant::Kind::Binary: return "binary";
  }
  return "none";
}

const char* ruleName(sparse::AttentionRule::Kind k) {
  switch (k) {
    case sparse::AttentionRule::Kind::None: return "none";
    case sparse::AttentionRule::Kind::Threshold: return "threshold";
    case sparse::AttentionRule::Kind::TopK: return "topk";
    case sparse::AttentionRule::Kind::Mass: return "mass";
  }
  return "none";
}

Json ruleJson(const sparse::AttentionRule& r) {
  return Json{{"kind", ruleName(r.kind)}, {"tau", r.tau}, {"k", r.k}, {"mass", r.mass},
              {"renormalize", r.renormalize}};
}

// Reading with errors that name the file and the key.
struct Reader {
  const std::string& file;
  Error error(const std::string& key, const std::string& what) const {
    return Error{file + ": " + key + " " + what};
  }
};

Result<sparse::AttentionRule> parseRule(const Json& j, const std::string& key, const Reader& rd) {
  if (!j.is_object()) return rd.error(key, "must be an object");
  sparse::AttentionRule r;
  const std::string kind = j.value("kind", "none");
  if (kind == "none")
    r.kind = sparse::AttentionRule::Kind::None;
  else if (kind == "threshold")
    r.kind = sparse::AttentionRule::Kind::Threshold;
  else if (kind == "topk")
    r.kind = sparse::AttentionRule::Kind::TopK;
  else if (kind == "mass")
    r.kind = sparse::AttentionRule::Kind::Mass;
  else
    return rd.error(key + ".kind", "must be none, threshold, topk or mass, not '" + kind + "'");
  try {
    r.tau = j.value("tau", r.tau);
    r.k = j.value("k", r.k);
    r.mass = j.value("mass", r.mass);
    r.renormalize = j.value("renormalize", r.renormalize);
  } catch (const nlohmann::json::exception&) {
    return rd.error(key, "has a value of the wrong type");
  }
  if (Status st = sparse::validate(r); !st) return rd.error(key, st.message());
  return r;
}

}  // namespace

std::vector<std::shared_ptr<const quant::QuantizedTensor>> sharedCodes(
    std::vector<quant::QuantizedTensor>&& codes) {
  std::vector<std::shared_ptr<const quant::QuantizedTensor>> out;
  out.reserve(codes.size());
  for (auto& q : codes) out.push_back(std::make_shared<const quant::QuantizedTensor>(std::move(q)));
  return out;
}

bool CompressionPlan::empty() const {
  return !quant.quantizesWeights() && quant.attention.kind == quant::AttentionQuant::Kind::None &&
         !prune.prunesWeights() && prune.heads.empty() && !prune.attention.active();
}

std::string planJson(const CompressionPlan& p) {
  Json j;
  j["format"] = kFormat;
  j["version"] = 1;
  j["student"] = p.student;
  j["quantization"] = {{"weights", quant::planText(p.quant)},
                       {"attention",
                        {{"method", attentionQuantName(p.quant.attention.kind)},
                         {"bits", p.quant.attention.bits},
                         {"threshold", p.quant.attention.threshold}}}};
  Json targets = Json::object();
  for (int t = 0; t < kTargetCount; ++t)
    if (const auto& spec = p.prune.targets[t])
      targets[kTargetNames[t]] = {{"method", sparse::pruneMethodText(*spec)},
                                  {"sparsity", spec->sparsity},
                                  {"norm", spec->norm}};
  Json heads = Json::array();
  for (const auto& [l, h] : p.prune.heads) heads.push_back({l, h});
  j["pruning"] = {{"targets", targets}, {"heads", heads}};
  Json overrides = Json::array();
  for (const auto& o : p.prune.attention.overrides)
    overrides.push_back({{"layer", o.layer}, {"head", o.head}, {"rule", ruleJson(o.rule)}});
  j["attention_sparsity"] = {{"rule", ruleJson(p.prune.attention.all)}, {"overrides", overrides}};
  return j.dump(2) + "\n";
}

Result<CompressionPlan> parsePlanJson(const std::string& text, const std::string& file) {
  const Reader rd{file};
  Json j;
  try {
    j = Json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    return Error{file + ": not valid JSON (" + std::string(e.what()) + ")"};
  }
  if (!j.is_object() || j.value("format", "") != kFormat)
    return Error{file + ": not a compression plan (\"format\" must be \"" + kFormat + "\")"};
  if (j.value("version", 0) != 1)
    return rd.error("version", "must be 1 (this program reads version 1 plans)");
  CompressionPlan p;
  try {
    p.student = j.value("student", "");
    if (j.contains("quantization")) {
      const Json& q = j["quantization"];
      if (Status st = quant::applyPlanText(q.value("weights", ""), p.quant); !st)
        return rd.error("quantization.weights", st.message());
      if (q.contains("attention")) {
        const Json& a = q["attention"];
        const std::string m = a.value("method", "none");
        using K = quant::AttentionQuant::Kind;
        if (m == "none")
          p.quant.attention.kind = K::None;
        else if (m == "uniform")
          p.quant.attention.kind = K::Uniform;
        else if (m == "log2")
          p.quant.attention.kind = K::Log2;
        else if (m == "binary")
          p.quant.attention.kind = K::Binary;
        else
          return rd.error("quantization.attention.method",
                          "must be none, uniform, log2 or binary, not '" + m + "'");
        p.quant.attention.bits = a.value("bits", p.quant.attention.bits);
        p.quant.attention.threshold = a.value("threshold", p.quant.attention.threshold);
        if (Status st = quant::validate(p.quant.attention); !st)
          return rd.error("quantization.attention", st.message());
      }
    }
    if (j.contains("pruning")) {
      const Json& pr = j["pruning"];
      if (pr.contains("targets")) {
        if (!pr["targets"].is_object()) return rd.error("pruning.targets", "must be an object");
        for (const auto& [name, spec] : pr["targets"].items()) {
          const std::string key = "pruning.targets." + name;
          int t = -1;
          for (int i = 0; i < kTargetCount; ++i)
            if (name == kTargetNames[i]) t = i;
          if (t < 0) return rd.error(key, "is not a tensor group (q, k, v, o, ffn_in, ffn_out, emb)");
          sparse::PruneSpec s;
          s.sparsity = spec.value("sparsity", s.sparsity);
          s.norm = spec.value("norm", s.norm);
          auto parsed = sparse::parsePruneMethod(spec.value("method", "magnitude"), s);
          if (!parsed) return rd.error(key + ".method", parsed.message());
          if (!(parsed->sparsity >= 0.0 && parsed->sparsity < 1.0))
            return rd.error(key + ".sparsity", "must be in [0, 1)");
          p.prune.targets[t] = *parsed;
        }
      }
      for (const Json& h : pr.value("heads", Json::array())) {
        if (!h.is_array() || h.size() != 2 || !h[0].is_number_integer() || !h[1].is_number_integer())
          return rd.error("pruning.heads", "entries must be [layer, head] pairs of integers");
        p.prune.heads.emplace_back(h[0].get<int>(), h[1].get<int>());
      }
    }
    if (j.contains("attention_sparsity")) {
      const Json& a = j["attention_sparsity"];
      if (a.contains("rule")) {
        auto r = parseRule(a["rule"], "attention_sparsity.rule", rd);
        if (!r) return r.error();
        p.prune.attention.all = *r;
      }
      int i = 0;
      for (const Json& o : a.value("overrides", Json::array())) {
        const std::string key = "attention_sparsity.overrides[" + std::to_string(i++) + "]";
        auto r = parseRule(o.value("rule", Json::object()), key + ".rule", rd);
        if (!r) return r.error();
        p.prune.attention.overrides.push_back({o.value("layer", 0), o.value("head", -1), *r});
      }
    }
  } catch (const nlohmann::json::exception& e) {
    return Error{file + ": a value has the wrong type (" + std::string(e.what()) + ")"};
  }
  return p;
}

Status savePlan(const std::filesystem::path& path, const CompressionPlan& plan) {
  const std::string text = planJson(plan);
  return writeFileAtomically(path, [&](std::FILE* f) -> Status {
    if (std::fwrite(text.data(), 1, text.size(), f) != text.size())
      return makeError("cannot write " + path.string());
    return Ok{};
  });
}

Result<CompressionPlan> loadPlan(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return makeError("cannot read '" + path.string() + "'");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return parsePlanJson(text, path.string());
}

namespace {
// The base model's tensor a quantized (layer, target) was read from; GPT-2's fused
// c_attn once its last third (V) is done.
std::vector<const Tensor*> sourceTensors(const ModelWeights& w, int layer, Target t) {
  if (layer < 0) return {&w.wordEmb, &w.posEmb, &w.typeEmb};
  const LayerWeights& l = w.layers[size_t(layer)];
  switch (t) {
    case Target::Q: return {l.fusedQkv() ? nullptr : &l.q.w};
    case Target::K: return {l.fusedQkv() ? nullptr : &l.k.w};
    case Target::V: return {l.fusedQkv() ? &l.qkv.w : &l.v.w};
    case Target::O: return {&l.o.w};
    case Target::FfnIn: return {&l.ffnIn.w};
    case Target::FfnOut: return {&l.ffnOut.w};
    case Target::Emb: return {};
  }
  return {};
}
}  // namespace

Result<AppliedPlan> applyPlan(const Model& base, const CompressionPlan& plan, ThreadPool* pool,
                              const CancelToken* cancel, bool releaseSource, bool histograms,
                              const std::function<void(const Model&, int)>& stored) {
  AppliedPlan out;
  std::shared_ptr<const Model> current;
  if (plan.prune.prunesWeights() || !plan.prune.heads.empty()) {
    sparse::SparsifyOptions so;
    so.pool = pool;
    so.cancel = cancel;
    auto s = sparse::pruneModel(base, plan.prune, so);
    if (!s) return s.error();
    current = s->model;
    out.pruned = std::move(s->tensors);
  }
  const Model& toQuantize = current ? *current : base;
  if (plan.quant.quantizesWeights()) {
    quant::QuantizeModelOptions qo;
    qo.pool = pool;
    qo.cancel = cancel;
    qo.keepCodes = true;
    if (!histograms) qo.histogramBins = 0;
    if (plan.prune.heads.empty()) qo.stored = stored;
    if (releaseSource && !current)
      qo.consumed = [&base](int layer, Target t) {
        for (const Tensor* s : sourceTensors(base.weights, layer, t))
          if (s != nullptr && !s->empty()) base.checkpoint.releasePages(*s);
      };
    auto q = quant::quantizeModel(toQuantize, plan.quant, qo);
    if (!q) return q.error();
    current = q->model;
    if (!plan.prune.heads.empty()) {
      // Removed heads stay removed: a quantizer without an exact zero level (binary,
      // k-means) would otherwise give their zeroed rows values again.
      auto m = derivedModel(*q->model);
      if (Status st = sparse::zeroHeads(m->config, m->weights, plan.prune.heads); !st) return st.error();
      current = std::move(m);
    }
    out.quantized = std::move(q->tensors);
    out.codes = sharedCodes(std::move(q->codes));
    out.bytesBefore = q->bytesBefore;
    out.bytesAfter = q->bytesAfter;
  }
  if (!current) current = std::shared_ptr<const Model>(derivedModel(base));
  out.model = current;
  return out;
}

namespace {
bool sameSpec(const std::optional<quant::Spec>& a, const std::optional<quant::Spec>& b) {
  if (a.has_value() != b.has_value()) return false;
  if (!a) return true;
  return a->method == b->method && a->bits == b->bits && a->granularity == b->granularity &&
         a->groupSize == b->groupSize && a->symmetric == b->symmetric && a->clip == b->clip &&
         a->percentile == b->percentile;
}
}  // namespace

Result<AppliedPlan> reapplyPlan(const Model& base, const AppliedPlan& previous,
                                const CompressionPlan& previousPlan, const CompressionPlan& plan,
                                ThreadPool* pool, const CancelToken* cancel, bool histograms) {
  // Pruning decides the values every quantizer starts from. Removed heads and
  // Global specs (one threshold over many matrices) that change, or a previous
  // result without its codes, mean the whole plan again; a changed local spec
  // (magnitude, rows, cols, block, N:M) prunes again that target's matrices only.
  if (previousPlan.prune.heads != plan.prune.heads ||
      previous.codes.size() != previous.quantized.size() || !previous.model)
    return applyPlan(base, plan, pool, cancel, false, histograms);
  auto samePrune = [](const std::optional<sparse::PruneSpec>& a,
                      const std::optional<sparse::PruneSpec>& b) {
    if (a.has_value() != b.has_value()) return false;
    if (!a) return true;
    return a->method == b->method && a->sparsity == b->sparsity && a->norm == b->norm &&
           a->block == b->block && a->n == b->n && a->m == b->m;
  };
  std::array<bool, kTargetCount> repruned{};
  bool anyRepruned = false;
  for (int t = 0; t < kTargetCount; ++t) {
    const auto &a = previousPlan.prune.targets[size_t(t)], &b = plan.prune.targets[size_t(t)];
    repruned[size_t(t)] = !samePrune(a, b);
    anyRepruned |= repruned[size_t(t)];
    const bool global = (a && a->method == sparse::PruneMethod::Global) ||
                        (b && b->method == sparse::PruneMethod::Global);
    if (repruned[size_t(t)] && global) return applyPlan(base, plan, pool, cancel, false, histograms);
  }
  auto changed = [&](int layer, Target t) {
    return repruned[size_t(t)] ||
           !sameSpec(previousPlan.quant.specFor(layer, t), plan.quant.specFor(layer, t));
  };
  // When most matrices change, walking the model once (applyPlan) is cheaper.
  int changes = 0, involved = 0;
  for (int layer = -1; layer < base.config.layers; ++layer)
    for (int t = 0; t < kTargetCount; ++t) {
      if ((layer < 0) != (Target(t) == Target::Emb)) continue;
      changes += changed(layer, Target(t));
      involved += plan.quant.specFor(layer, Target(t)).has_value() ||
                  previousPlan.quant.specFor(layer, Target(t)).has_value() ||
                  plan.prune.targets[size_t(t)].has_value() ||
                  previousPlan.prune.targets[size_t(t)].has_value();
    }
  if (2 * changes > involved) return applyPlan(base, plan, pool, cancel, false, histograms);
  // The new masks of the re-pruned targets (their matrices as the whole plan prunes them).
  std::shared_ptr<const Model> repruneModel;
  std::vector<sparse::PrunedTensor> newMasks;
  if (anyRepruned) {
    sparse::SparsifyOptions so;
    so.pool = pool;
    so.cancel = cancel;
    so.only = [&](int, Target t) { return repruned[size_t(t)]; };
    auto s = sparse::pruneModel(base, plan.prune, so);
    if (!s) return s.error();
    repruneModel = s->model;
    newMasks = std::move(s->tensors);
  }
  // The values each changed matrix is quantized from: the base's, masked as pruned
  // (by the previous masks, or the new ones of a re-pruned target).
  // A matrix without a mask is read where the base keeps it (`lent`); the others
  // are copies, masked.
  struct Source {
    std::vector<float> values;
    const float* lent = nullptr;
    const float* data() const { return lent != nullptr ? lent : values.data(); }
  };
  std::map<std::string, Source> sources;
  {
    ModelWeights copy = base.weights;  // read only: nothing is stored back
    Status st = editWeightMatrices(
        base.config, copy, [&](int layer, Target t) { return changed(layer, t) && !repruned[size_t(t)]; },
        [&](const WeightMatrix& wm, std::vector<float>& v) -> Status {
          if (isCancelled(cancel)) return makeError("cancelled");
          Source& src = sources[wm.name];
          const sparse::PrunedTensor* mask = nullptr;
          for (const auto& p : previous.pruned)
            if (p.name == wm.name && p.mask.size() == wm.rows * wm.cols) mask = &p;
          if (wm.stored != nullptr && mask == nullptr) {
            src.lent = wm.stored;
            return Ok{};
          }
          src.values = wm.stored != nullptr ? std::vector<float>(wm.stored, wm.stored + wm.rows * wm.cols)
                                            : std::move(v);
          if (mask != nullptr) sparse::applyMask(src.values.data(), mask->mask, pool);
          return Ok{};
        },
        /*store=*/false, /*values=*/true, /*borrow=*/true);
    if (!st) return st.error();
    if (repruneModel) {
      ModelWeights masked = repruneModel->weights;
      st = editWeightMatrices(
          base.config, masked, [&](int, Target t) { return repruned[size_t(t)]; },
          [&](const WeightMatrix& wm, std::vector<float>& v) -> Status {
            // repruneModel outlives the quantization below: its pruned values are read there.
            Source& src = sources[wm.name];
            if (wm.stored != nullptr)
              src.lent = wm.stored;
            else
              src.values = std::move(v);
            return Ok{};
          },
          /*store=*/false, /*values=*/true, /*borrow=*/true);
      if (!st) return st.error();
    }
  }
  AppliedPlan out;
  for (const auto& p : previous.pruned)
    if (!repruned[size_t(p.target)]) out.pruned.push_back(p);
  for (auto& p : newMasks) out.pruned.push_back(std::move(p));
  std::stable_sort(out.pruned.begin(), out.pruned.end(),  // model order, as pruneModel's
                   [](const sparse::PrunedTensor& a, const sparse::PrunedTensor& b) {
                     return std::make_pair(a.layer, int(a.target)) < std::make_pair(b.layer, int(b.target));
                   });
  if (sources.empty()) {  // no weight spec changed
    out.model = previous.model;
    out.quantized = previous.quantized;
    out.codes = previous.codes;
    out.bytesBefore = previous.bytesBefore;
    out.bytesAfter = previous.bytesAfter;
    return out;
  }
  struct Entry {
    quant::TensorReport report;
    std::shared_ptr<const quant::QuantizedTensor> codes;
  };
  std::vector<Entry> entries;
  for (size_t k = 0; k < previous.quantized.size(); ++k)
    if (!changed(previous.quantized[k].layer, previous.quantized[k].target))
      entries.push_back({previous.quantized[k], previous.codes[k]});
  auto m = derivedModel(*previous.model);
  Status st = editWeightMatrices(
      m->config, m->weights, changed, [&](const WeightMatrix& wm, std::vector<float>& v) -> Status {
        if (isCancelled(cancel)) return makeError("cancelled");
        Source& src = sources[wm.name];
        const int64_t n = wm.rows * wm.cols;
        const auto spec = plan.quant.specFor(wm.layer, wm.target);
        if (!spec) {  // no longer quantized: the (pruned) float values
          v = src.lent != nullptr ? std::vector<float>(src.lent, src.lent + n) : std::move(src.values);
          return Ok{};
        }
        quant::TensorReport rep{wm.name, wm.target, wm.layer, *spec, {}};
        Result<quant::QuantizedTensor> q = makeError("");
        if (histograms) {
          q = quant::quantize(src.data(), wm.rows, wm.cols, *spec, pool);
          if (q) {
            std::vector<float> deq = q->dequantize();
            rep.stats = quant::errorStats(src.data(), *q, deq, 64, pool);
            v = std::move(deq);
          }
        } else if (src.lent == nullptr) {  // one pass, the copy overwritten in place
          q = quant::quantizeInto(src.values.data(), wm.rows, wm.cols, *spec,
                                  src.values.data(), rep.stats, pool);
          if (q) v = std::move(src.values);
        } else if (wm.replacement != nullptr) {  // one pass into a new tensor, no copy
          Tensor out = Tensor::uninitializedF32({wm.rows, wm.cols});
          q = quant::quantizeInto(src.lent, wm.rows, wm.cols, *spec, out.mutableF32(), rep.stats,
                                  pool);
          if (q) *wm.replacement = std::move(out);
        } else {
          v.resize(size_t(n));
          q = quant::quantizeInto(src.lent, wm.rows, wm.cols, *spec, v.data(), rep.stats, pool);
        }
        if (!q) return makeError(wm.name + ": " + q.message());
        entries.push_back({std::move(rep), std::make_shared<const quant::QuantizedTensor>(std::move(*q))});
        return Ok{};
      },
      /*store=*/true, /*values=*/false, /*borrow=*/true);  // the values come from `sources`
  if (!st) return st.error();
  if (!plan.prune.heads.empty())
    if (Status z = sparse::zeroHeads(m->config, m->weights, plan.prune.heads); !z) return z.error();
  // Model order: embeddings, then layer by layer q, k, v, o, ffn_in, ffn_out (the
  // matrices of one (layer, target) all come from the same side, in their order).
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return std::make_pair(a.report.layer, int(a.report.target)) <
           std::make_pair(b.report.layer, int(b.report.target));
  });
  out.bytesBefore = floatBytes(base.weights);
  out.bytesAfter = out.bytesBefore;
  for (auto& e : entries) {
    out.bytesAfter += e.report.stats.bytesAfter - e.report.stats.bytesBefore;
    out.quantized.push_back(std::move(e.report));
    out.codes.push_back(std::move(e.codes));
  }
  if (out.quantized.empty()) out.bytesBefore = out.bytesAfter = 0;  // as applyPlan without quantization
  out.model = std::move(m);
  return out;
}

ForwardOptions forwardOptions(const CompressionPlan& plan, ForwardOptions options) {
  options = quant::withAttentionQuant(std::move(options), plan.quant.attention);
  if (plan.prune.attention.active())
    options = sparse::withAttentionSparsity(std::move(options), plan.prune.attention, nullptr, 0);
  return options;
}

}  // namespace attn::compress
