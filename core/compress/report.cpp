#include "core/compress/report.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

#include "core/attention/compare.h"

namespace attn::compress {

namespace {
using Json = nlohmann::ordered_json;

std::string csvField(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}
}  // namespace

namespace {
// The report's input and both models' forward passes on it.
struct Runs {
  std::string text;
  std::vector<std::string> tokens;
  ForwardResult ref, got;
  Fidelity fid;
};

struct Input {
  std::string text;
  std::vector<std::string> tokens;
  std::vector<int32_t> ids;
};

Input input(const Model& base, const std::string& textIn) {
  Input r;
  r.text = textIn.empty() ? "The quick brown fox jumps over the lazy dog." : textIn;
  std::vector<int32_t> ids;
  if (base.tokenizer) {
    auto e = base.tokenizer->encode(r.text);
    ids = std::move(e.ids);
    r.tokens = std::move(e.tokens);
  } else {
    for (int i = 0; i < 8; ++i) {
      ids.push_back(i % base.config.vocabSize);
      r.tokens.push_back(std::to_string(ids.back()));
    }
  }
  if (static_cast<int>(ids.size()) > base.config.maxPositions) {
    ids.resize(size_t(base.config.maxPositions));
    r.tokens.resize(ids.size());
  }
  r.ids = std::move(ids);
  return r;
}

Result<Runs> run(const Model& base, const AppliedPlan& applied, const CompressionPlan& plan,
                 const std::string& textIn, ThreadPool* pool, const ForwardResult* reference) {
  Input in = input(base, textIn);
  Runs r;
  r.text = in.text;
  r.tokens = in.tokens;
  ForwardOptions fo;
  fo.pool = pool;
  if (reference) {
    if (reference->seq != int(in.ids.size())) return makeError("the report's reference is for another text");
    r.ref = *reference;
  } else {
    auto ref = forward(base.config, base.weights, in.ids, {}, fo);
    if (!ref) return ref.error();
    r.ref = std::move(*ref);
  }
  auto got = forward(applied.model->config, applied.model->weights, in.ids, {}, forwardOptions(plan, fo));
  if (!got) return got.error();
  r.got = std::move(*got);
  r.fid = fidelity(r.ref, r.got);
  return r;
}
}  // namespace

Result<ForwardResult> reportReference(const Model& base, const std::string& text, ThreadPool* pool) {
  ForwardOptions fo;
  fo.pool = pool;
  return forward(base.config, base.weights, input(base, text).ids, {}, fo);
}

namespace {
ReportFigures figuresOf(const Runs* r, const AppliedPlan& applied, const CompressionPlan& plan) {
  ReportFigures f;
  f.planText = quant::planText(plan.quant);
  if (!plan.prune.heads.empty()) f.planText += "; " + std::to_string(plan.prune.heads.size()) + " heads removed";
  if (plan.prune.attention.active()) f.planText += "; attention sparsity";
  f.bytesBefore = applied.bytesBefore;
  f.bytesAfter = applied.bytesAfter;
  f.bitsPerWeight = quant::bitsPerQuantizedWeight(applied.quantized);
  f.klMean = r->fid.klMean;
  f.jsMean = r->fid.jsMean;
  f.hiddenCosine = r->fid.hiddenCosine;
  f.tokens = r->tokens;
  f.layers = r->fid.layers;
  f.heads = r->fid.heads;
  f.layerKl.assign(size_t(f.layers), 0.0);
  std::vector<std::pair<double, int>> byKl;
  for (int l = 0; l < f.layers; ++l)
    for (int h = 0; h < f.heads; ++h) {
      const double kl = r->fid.kl[size_t(l) * f.heads + h];
      f.layerKl[size_t(l)] += kl / f.heads;
      byKl.push_back({kl, l * f.heads + h});
    }
  std::stable_sort(byKl.begin(), byKl.end(), [](auto& a, auto& b) { return a.first > b.first; });
  const size_t S = size_t(r->ref.seq);
  for (size_t i = 0; i < std::min<size_t>(3, byKl.size()); ++i) {
    ReportFigures::Head h;
    h.layer = byKl[i].second / f.heads;
    h.head = byKl[i].second % f.heads;
    h.kl = byKl[i].first;
    h.removed = std::find(plan.prune.heads.begin(), plan.prune.heads.end(),
                          std::pair<int, int>{h.layer, h.head}) != plan.prune.heads.end();
    const float* a = r->ref.attentionMap(h.layer, h.head);
    const float* b = r->got.attentionMap(h.layer, h.head);
    h.before.assign(a, a + S * S);
    h.after.assign(b, b + S * S);
    f.mostChanged.push_back(std::move(h));
  }
  std::vector<size_t> order(applied.quantized.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return applied.quantized[a].stats.sqnrDb < applied.quantized[b].stats.sqnrDb;
  });
  for (size_t i = 0; i < std::min<size_t>(2, order.size()); ++i) {
    const auto& t = applied.quantized[order[i]];
    f.errors.push_back({t.name, quant::specText(t.spec), t.stats.sqnrDb, t.stats.errors});
  }
  std::vector<const sparse::PrunedTensor*> pruned;
  for (const auto& t : applied.pruned) pruned.push_back(&t);
  std::stable_sort(pruned.begin(), pruned.end(), [](auto* a, auto* b) {
    return a->mask.sparsity() > b->mask.sparsity();
  });
  for (size_t i = 0; i < std::min<size_t>(2, pruned.size()); ++i)
    f.patterns.push_back({pruned[i]->name, pruned[i]->mask.sparsity(),
                          sparse::blockDensity(pruned[i]->mask, 64)});
  return f;
}

std::string jsonOf(const Runs* r, const AppliedPlan& applied, const CompressionPlan& plan) {
  const std::string& text = r->text;
  const Fidelity& fid = r->fid;

  Json tensors = Json::array();
  std::map<std::string, double> sparsity;
  for (const auto& t : applied.pruned) sparsity[t.name] = t.mask.sparsity();
  for (const auto& t : applied.quantized)
    tensors.push_back({{"name", t.name},
                       {"method", quant::specText(t.spec)},
                       {"bits_per_weight", t.stats.bitsPerWeight},
                       {"mse", t.stats.mse},
                       {"sqnr_db", std::isfinite(t.stats.sqnrDb) ? Json(t.stats.sqnrDb) : Json(nullptr)},
                       {"sparsity", sparsity.count(t.name) ? sparsity[t.name] : 0.0}});
  if (applied.quantized.empty())
    for (const auto& t : applied.pruned)
      tensors.push_back({{"name", t.name}, {"method", "float32"}, {"bits_per_weight", 32.0},
                         {"mse", nullptr}, {"sqnr_db", nullptr}, {"sparsity", t.mask.sparsity()}});
  Json heads = Json::array();
  for (int l = 0; l < fid.layers; ++l)
    for (int h = 0; h < fid.heads; ++h)
      heads.push_back({{"layer", l}, {"head", h}, {"kl", fid.kl[size_t(l) * fid.heads + h]},
                       {"js", fid.js[size_t(l) * fid.heads + h]}});
  Json report;
  report["tool"] = "Attention Studio";
  report["version"] = ATTN_VERSION;
  report["plan"] = Json::parse(planJson(plan));
  report["bytes_before"] = applied.bytesBefore;
  report["bytes_after"] = applied.bytesAfter;
  report["tensors"] = tensors;
  report["text"] = text;
  report["attention_kl_mean"] = fid.klMean;
  report["attention_js_mean"] = fid.jsMean;
  report["hidden_cosine"] = fid.hiddenCosine;
  report["heads"] = heads;
  return report.dump(2) + "\n";
}
}  // namespace

Result<ReportFigures> reportFigures(const Model& base, const AppliedPlan& applied,
                                    const CompressionPlan& plan, const std::string& text,
                                    ThreadPool* pool, const ForwardResult* reference) {
  auto r = run(base, applied, plan, text, pool, reference);
  if (!r) return r.error();
  return figuresOf(&*r, applied, plan);
}

Result<std::string> reportJson(const Model& base, const AppliedPlan& applied,
                               const CompressionPlan& plan, const std::string& text,
                               ThreadPool* pool, const ForwardResult* reference) {
  auto r = run(base, applied, plan, text, pool, reference);
  if (!r) return r.error();
  return jsonOf(&*r, applied, plan);
}

Result<ReportOutputs> reportJsonAndFigures(const Model& base, const AppliedPlan& applied,
                                           const CompressionPlan& plan, const std::string& text,
                                           ThreadPool* pool, const ForwardResult* reference) {
  auto r = run(base, applied, plan, text, pool, reference);
  if (!r) return r.error();
  return ReportOutputs{jsonOf(&*r, applied, plan), figuresOf(&*r, applied, plan)};
}

std::string reportCsv(const std::string& jsonText) {
  const Json r = Json::parse(jsonText);
  auto num = [](const Json& v) { return v.is_null() ? std::string() : v.dump(); };
  std::string csv = "kind,name,layer,head,method,bits_per_weight,sparsity,mse,sqnr_db,kl,js\n";
  for (const auto& t : r.at("tensors"))
    csv += "tensor," + csvField(t.at("name").get<std::string>()) + ",,," +
           csvField(t.at("method").get<std::string>()) + "," + num(t.at("bits_per_weight")) + "," +
           num(t.at("sparsity")) + "," + num(t.at("mse")) + "," + num(t.at("sqnr_db")) + ",,\n";
  for (const auto& h : r.at("heads"))
    csv += "head,," + h.at("layer").dump() + "," + h.at("head").dump() + ",,,,,," +
           h.at("kl").dump() + "," + h.at("js").dump() + "\n";
  return csv;
}

}  // namespace attn::compress
