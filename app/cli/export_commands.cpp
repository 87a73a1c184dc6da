// attnstudio-cli export: apply a compression plan and write the model.
#include <cmath>
#include <fstream>
#include <iostream>

#include "app/cli/cli_util.h"
#include "app/cli/commands.h"
#include "core/attention/compare.h"
#include "core/compress/compressed.h"
#include "core/compress/plan.h"
#include "core/io/atomic_file.h"
#include "core/model/hf_writer.h"

namespace attn::cli {

namespace {

std::string csvField(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

Status writeText(const std::string& path, const std::string& text) {
  return writeFileAtomically(path, [&](std::FILE* f) -> Status {
    if (std::fwrite(text.data(), 1, text.size(), f) != text.size())
      return makeError("cannot write " + path);
    return Ok{};
  });
}

}  // namespace

int runExport(const ExportArgs& a) {
  auto model = load(a.model);
  if (!model) return fail(model.message());
  auto plan = compress::loadPlan(a.plan);
  if (!plan) return fail(plan.message());
  DType dtype = DType::F32;
  if (a.dtype == "f16")
    dtype = DType::F16;
  else if (a.dtype == "bf16")
    dtype = DType::BF16;
  else if (a.dtype != "f32")
    return fail("--dtype must be f32, f16 or bf16");
  if (!a.report.empty() && !(a.report.ends_with(".json") || a.report.ends_with(".csv")))
    return fail("--report must end in .json or .csv");
  ThreadPool pool(threadCount(a.threads));
  auto applied = compress::applyPlan(**model, *plan, &pool);
  if (!applied) return fail(applied.message());
  compress::CompressionPlan recorded = *plan;
  if (recorded.student.empty()) recorded.student = a.model;
  const std::string planText = compress::planJson(recorded);
  HfWriteOptions wo;
  wo.dtype = dtype;
  wo.extraMetadata["attnstudio_plan"] = planText;
  wo.extraMetadata["attnstudio_version"] = ATTN_VERSION;
  if (a.format == "compressed") {
    if (dtype != DType::F32) return fail("--dtype applies to --format hf");
    if (Status st = compress::writeCompressedModel(a.out, **model, *applied, recorded); !st)
      return fail(st.message());
  } else if (Status st = writeHfModel(a.out, **model, applied->model->weights, wo); !st) {
    return fail(st.message());
  }

  // Report: per tensor, and the attention of the compressed model against the
  // original on one input (the plan's attention settings applied).
  std::vector<int32_t> ids;
  const std::string text = a.text.empty() ? "The quick brown fox jumps over the lazy dog." : a.text;
  if ((*model)->tokenizer)
    ids = (*model)->tokenizer->encode(text).ids;
  else
    for (int i = 0; i < 8; ++i) ids.push_back(i % (*model)->config.vocabSize);
  ForwardOptions fo;
  fo.pool = &pool;
  auto ref = forward((*model)->config, (*model)->weights, ids, {}, fo);
  auto got = forward(applied->model->config, applied->model->weights, ids, {},
                     compress::forwardOptions(*plan, fo));
  if (!ref || !got) return fail(!ref ? ref.message() : got.message());
  const Fidelity fid = fidelity(*ref, *got);

  Json tensors = Json::array();
  std::map<std::string, double> sparsity;
  for (const auto& t : applied->pruned) sparsity[t.name] = t.mask.sparsity();
  for (const auto& t : applied->quantized)
    tensors.push_back({{"name", t.name},
                       {"method", quant::specText(t.spec)},
                       {"bits_per_weight", t.stats.bitsPerWeight},
                       {"mse", t.stats.mse},
                       {"sqnr_db", std::isfinite(t.stats.sqnrDb) ? Json(t.stats.sqnrDb) : Json(nullptr)},
                       {"sparsity", sparsity.count(t.name) ? sparsity[t.name] : 0.0}});
  if (applied->quantized.empty())
    for (const auto& t : applied->pruned)
      tensors.push_back({{"name", t.name}, {"method", "float32"}, {"bits_per_weight", 32.0},
                         {"mse", nullptr}, {"sqnr_db", nullptr}, {"sparsity", t.mask.sparsity()}});
  Json heads = Json::array();
  for (int l = 0; l < fid.layers; ++l)
    for (int h = 0; h < fid.heads; ++h)
      heads.push_back({{"layer", l}, {"head", h}, {"kl", fid.kl[size_t(l) * fid.heads + h]},
                       {"js", fid.js[size_t(l) * fid.heads + h]}});
  Json report;
  report["tool"] = "attnstudio-cli";
  report["version"] = ATTN_VERSION;
  report["model"] = a.model;
  report["out"] = a.out;
  report["format"] = a.format;
  report["dtype"] = a.dtype;
  report["plan"] = Json::parse(planText);
  report["bytes_before"] = applied->bytesBefore;
  report["bytes_after"] = applied->bytesAfter;
  report["tensors"] = tensors;
  report["text"] = text;
  report["attention_kl_mean"] = fid.klMean;
  report["attention_js_mean"] = fid.jsMean;
  report["hidden_cosine"] = fid.hiddenCosine;
  report["heads"] = heads;
  if (a.report.ends_with(".json")) {
    if (Status st = writeText(a.report, report.dump(2) + "\n"); !st) return fail(st.message());
  } else if (a.report.ends_with(".csv")) {
    std::string csv = "kind,name,layer,head,method,bits_per_weight,sparsity,mse,sqnr_db,kl,js\n";
    for (const auto& t : tensors) {
      auto num = [](const Json& v) { return v.is_null() ? std::string() : v.dump(); };
      csv += "tensor," + csvField(t["name"]) + ",,," + csvField(t["method"]) + "," +
             num(t["bits_per_weight"]) + "," + num(t["sparsity"]) + "," + num(t["mse"]) + "," +
             num(t["sqnr_db"]) + ",,\n";
    }
    for (const auto& h : heads)
      csv += "head,," + h["layer"].dump() + "," + h["head"].dump() + ",,,,,," + h["kl"].dump() +
             "," + h["js"].dump() + "\n";
    if (Status st = writeText(a.report, csv); !st) return fail(st.message());
  }
  if (a.json) {
    printJson(report);
  } else {
    std::printf("%s written (%s, %zu tensors quantized, %zu pruned); attention KL %.6f, hidden cosine %.6f\n",
                a.out.c_str(), a.dtype.c_str(), applied->quantized.size(), applied->pruned.size(),
                fid.klMean, fid.hiddenCosine);
  }
  return 0;
}

}  // namespace attn::cli
