#include "core/compress/report.h"

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

Result<std::string> reportJson(const Model& base, const AppliedPlan& applied,
                               const CompressionPlan& plan, const std::string& textIn,
                               ThreadPool* pool) {
  const std::string text = textIn.empty() ? "The quick brown fox jumps over the lazy dog." : textIn;
  std::vector<int32_t> ids;
  if (base.tokenizer)
    ids = base.tokenizer->encode(text).ids;
  else
    for (int i = 0; i < 8; ++i) ids.push_back(i % base.config.vocabSize);
  if (static_cast<int>(ids.size()) > base.config.maxPositions) ids.resize(size_t(base.config.maxPositions));
  ForwardOptions fo;
  fo.pool = pool;
  auto ref = forward(base.config, base.weights, ids, {}, fo);
  if (!ref) return ref.error();
  auto got = forward(applied.model->config, applied.model->weights, ids, {}, forwardOptions(plan, fo));
  if (!got) return got.error();
  const Fidelity fid = fidelity(*ref, *got);

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
