#include "app/cli/commands.h"
#include "app/cli/cli_util.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "core/attention/compare.h"
#include "core/attention/metrics.h"
#include "core/io/hdf5_writer.h"
#include "core/io/npy.h"
#include "core/model/hf_writer.h"
#include "core/model/model.h"
#include "core/quant/model_quant.h"
#include "core/sparse/model_sparse.h"
#include "core/text/corpus.h"

namespace attn::cli {

namespace {

Json tensorList(const Model& m) {
  Json list = Json::array();
  for (const auto& [name, item] : m.checkpoint.tensors)
    list.push_back({{"name", name},
                    {"dtype", std::string(dtypeName(item.tensor.dtype()))},
                    {"shape", item.tensor.shape()}});
  return list;
}
}  // namespace

int runInspect(const InspectArgs& a) {
  auto loaded = load(a.model);
  if (!loaded) return fail(loaded.message());
  const Model& m = **loaded;
  const ModelConfig& c = m.config;
  const std::string tok = m.tokenizer ? m.tokenizer->kind() : "none";
  if (a.json) {
    Json j;
    j["architecture"] = architectureName(c.arch);
    j["class"] = c.hfClass;
    j["layers"] = c.layers;
    j["heads"] = c.heads;
    j["hidden"] = c.hidden;
    j["intermediate"] = c.intermediate;
    j["vocab_size"] = c.vocabSize;
    j["max_positions"] = c.maxPositions;
    j["parameters"] = m.parameters;
    j["file_bytes"] = m.fileBytes;
    j["files"] = Json::array();
    for (const auto& f : m.checkpoint.files) j["files"].push_back(f->path().filename().string());
    j["tokenizer"] = tok;
    j["warnings"] = m.warnings;
    j["tensors"] = tensorList(m);
    printJson(j);
    return 0;
  }
  std::printf("%s (%s)\n", architectureName(c.arch).c_str(), c.hfClass.c_str());
  std::printf("  layers %d, heads %d, hidden %d, intermediate %d\n", c.layers, c.heads, c.hidden,
              c.intermediate);
  std::printf("  vocab %d, max positions %d, tokenizer %s\n", c.vocabSize, c.maxPositions,
              tok.c_str());
  std::printf("  parameters %lld, %zu tensors in %zu file(s), %.1f MB\n",
              static_cast<long long>(m.parameters), m.checkpoint.tensors.size(),
              m.checkpoint.files.size(), static_cast<double>(m.fileBytes) / 1e6);
  return 0;
}

int runTokenize(const TokenizeArgs& a) {
  auto loaded = load(a.model);
  if (!loaded) return fail(loaded.message());
  const Model& m = **loaded;
  if (!m.tokenizer) return fail("'" + a.model + "' has no tokenizer files");
  const text::Encoding e = m.tokenizer->encode(a.text);
  if (a.json) {
    Json j;
    j["ids"] = e.ids;
    j["tokens"] = e.tokens;
    Json offs = Json::array();
    for (const auto& [b, en] : e.offsets) offs.push_back({b, en});
    j["offsets"] = offs;
    printJson(j);
    return 0;
  }
  for (size_t i = 0; i < e.ids.size(); ++i) std::printf("%6d  %s\n", e.ids[i], e.tokens[i].c_str());
  return 0;
}

int runAttention(const AttentionArgs& a) {
  const std::filesystem::path out(a.out);
  if (!a.out.empty() && out.extension() != ".npy" && out.extension() != ".h5" &&
      out.extension() != ".hdf5")
    return fail("--out must end in .npy or .h5, not '" + out.extension().string() + "'");
  auto loaded = load(a.model);
  if (!loaded) return fail(loaded.message());
  const Model& m = **loaded;
  std::vector<int32_t> ids;
  std::vector<std::string> tokens;
  if (!a.ids.empty()) {
    auto parsed = parseIntList(a.ids, "--ids");
    if (!parsed) return fail(parsed.message());
    ids = *parsed;
    for (int32_t id : ids)
      tokens.push_back(m.tokenizer ? m.tokenizer->idToToken(id) : std::to_string(id));
  } else {
    if (!m.tokenizer) return fail("'" + a.model + "' has no tokenizer files; pass --ids instead");
    const text::Encoding e = m.tokenizer->encode(a.text);
    ids = e.ids;
    tokens = e.tokens;
  }
  std::vector<int32_t> mask;
  if (!a.mask.empty()) {
    auto parsed = parseIntList(a.mask, "--mask");
    if (!parsed) return fail(parsed.message());
    mask = *parsed;
    for (int32_t v : mask)
      if (v != 0 && v != 1) return fail("--mask entries must be 0 or 1, not " + std::to_string(v));
    if (mask.size() != ids.size())
      return fail("--mask has " + std::to_string(mask.size()) + " entries for " +
                  std::to_string(ids.size()) + " tokens");
  }
  ThreadPool pool(threadCount(a.threads));
  ForwardOptions opt;
  opt.pool = &pool;
  auto r = forward(m.config, m.weights, ids, mask, opt);
  if (!r) return fail(r.message());
  const int L = r->layers, H = r->heads, S = r->seq;
  if (!a.out.empty()) {
    Status st = Ok{};
    if (out.extension() == ".npy") {
      st = writeNpyF32(out, {L, H, S, S}, r->attention.data());
    } else {
      AttentionDump d{architectureName(m.config.arch), L, H, S, r->attention.data(), ids, tokens};
      st = writeAttentionHdf5(out, d);
    }
    if (!st) return fail(st.message());
  }
  std::vector<uint8_t> rows(mask.begin(), mask.end());
  const auto ent = headEntropies(r->attention.data(), L, H, S, rows);
  if (a.json) {
    Json j;
    j["ids"] = ids;
    j["tokens"] = tokens;
    j["layers"] = L;
    j["heads"] = H;
    j["seq"] = S;
    Json e = Json::array();
    for (int l = 0; l < L; ++l)
      e.push_back(std::vector<double>(ent.begin() + l * H, ent.begin() + (l + 1) * H));
    j["entropy"] = e;
    if (!a.out.empty()) j["out"] = a.out;
    printJson(j);
    return 0;
  }
  std::printf("%d layers x %d heads, %d tokens\n", L, H, S);
  for (int l = 0; l < L; ++l) {
    std::printf("  layer %2d entropy:", l);
    for (int h = 0; h < H; ++h) std::printf(" %.3f", ent[l * H + h]);
    std::printf("\n");
  }
  if (!a.out.empty()) std::printf("wrote %s\n", a.out.c_str());
  return 0;
}

int runBench(const BenchArgs& a) {
  auto loaded = a.synthetic.empty() ? load(a.model) : syntheticModel(a.synthetic);
  if (!loaded) return fail(loaded.message());
  const Model& m = **loaded;
  if (a.seq > m.config.maxPositions)
    return fail("--seq " + std::to_string(a.seq) + " exceeds the model's " +
                std::to_string(m.config.maxPositions) + " positions");
  std::mt19937 rng(42);
  std::uniform_int_distribution<int32_t> dist(0, m.config.vocabSize - 1);
  std::vector<int32_t> ids(a.seq);
  for (auto& id : ids) id = dist(rng);
  if (m.config.arch == Architecture::Roberta)  // keep clear of the padding id
    for (auto& id : ids)
      if (id == m.config.padTokenId) id = m.config.padTokenId + 1;
  const int threads = threadCount(a.threads);
  ThreadPool pool(threads);
  ForwardOptions opt;
  opt.pool = &pool;
  std::vector<double> ms;
  for (int run = 0; run <= a.runs; ++run) {
    const auto t0 = std::chrono::steady_clock::now();
    auto r = forward(m.config, m.weights, ids, {}, opt);
    const auto t1 = std::chrono::steady_clock::now();
    if (!r) return fail(r.message());
    if (run > 0) ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  const double median =
      ms.size() % 2 ? ms[ms.size() / 2] : 0.5 * (ms[ms.size() / 2 - 1] + ms[ms.size() / 2]);
  if (a.json) {
    Json j;
    j["model"] = a.synthetic.empty() ? a.model : "synthetic:" + a.synthetic;
    j["seq"] = a.seq;
    j["runs"] = a.runs;
    j["threads"] = threads;
    j["forward_ms_median"] = median;
    j["forward_ms_min"] = ms.front();
    j["peak_rss_mb"] = peakRssMb();
    printJson(j);
    return 0;
  }
  std::printf(
      "forward with all attentions, seq %d, %d threads: median %.2f ms, min %.2f ms "
      "(%d runs), peak RSS %.1f MB\n",
      a.seq, threads, median, ms.front(), a.runs, peakRssMb());
  return 0;
}

}  // namespace attn::cli

namespace attn::cli {

namespace {
// A tensor that owns a copy of `v` (codes, scales, … for --dump).
template <class T>
Tensor ownedTensor(DType dtype, Shape shape, std::vector<T> v) {
  auto keep = std::make_shared<std::vector<T>>(std::move(v));
  return Tensor(dtype, std::move(shape), keep->data(), keep);
}

// Codes and parameters of every quantized tensor, with each one's spec as JSON metadata.
Status writeQuantDump(const std::string& path, const quant::QuantizedModel& q) {
  std::vector<std::pair<std::string, Tensor>> ts;
  std::map<std::string, std::string> meta = {{"format", "attnstudio-quant-dump"}};
  for (size_t i = 0; i < q.tensors.size(); ++i) {
    const quant::TensorReport& r = q.tensors[i];
    const quant::QuantizedTensor& c = q.codes[i];
    const int64_t blocks = quant::blockCount(c.spec, c.rows, c.cols);
    ts.emplace_back(r.name + ".codes",
                    ownedTensor(DType::U8, {int64_t(c.packed.size())}, c.packed));
    if (!c.scales.empty())
      ts.emplace_back(r.name + ".scales", ownedTensor(DType::F32, {blocks}, c.scales));
    if (!c.zeros.empty())
      ts.emplace_back(r.name + ".zeros", ownedTensor(DType::U8, {blocks}, c.zeros));
    if (!c.exponents.empty())
      ts.emplace_back(r.name + ".exponents", ownedTensor(DType::I8, {blocks}, c.exponents));
    if (!c.codebook.empty())
      ts.emplace_back(r.name + ".codebook",
                      ownedTensor(DType::F32, {blocks, int64_t(1) << c.spec.bits}, c.codebook));
    meta[r.name] =
        Json{{"method", quant::traits(c.spec.method).name},
             {"bits", c.spec.bits},
             {"granularity", quant::granularityName(c.spec.granularity)},
             {"group_size", c.spec.granularity == quant::Granularity::Group ? c.spec.groupSize : 0},
             {"symmetric", c.spec.symmetric},
             {"rows", c.rows},
             {"cols", c.cols},
             {"code_layout", "LSB-first bit stream, row-major [rows, cols]"}}
            .dump();
  }
  return writeSafetensors(path, ts, meta);
}

Result<quant::ModelQuantPlan> planFrom(const QuantizeArgs& a) {
  quant::Spec s;
  auto m = quant::parseMethod(a.method);
  if (!m) return m.error();
  s.method = *m;
  s.bits = a.bits;
  s.symmetric = !a.asym;
  if (a.asym && s.method != quant::Method::Uniform)
    return makeError("--asym applies to the uniform method only");
  if (a.clip == "mse") {
    s.clip = quant::Clip::Mse;
  } else if (a.clip.rfind("percentile:", 0) == 0) {
    s.clip = quant::Clip::Percentile;
    try {
      s.percentile = std::stod(a.clip.substr(11));
    } catch (const std::exception&) {
      return makeError("--clip percentile:P needs a number, not '" + a.clip.substr(11) + "'");
    }
  } else if (a.clip != "none") {
    return makeError("--clip must be none, mse or percentile:P, not '" + a.clip + "'");
  }
  if (s.clip != quant::Clip::None && s.method != quant::Method::Uniform)
    return makeError("--clip applies to the uniform method only");
  auto g = quant::parseGranularity(a.granularity, s);
  if (!g) return g.error();
  auto targets = quant::parseTargets(a.targets);
  if (!targets) return targets.error();
  quant::ModelQuantPlan plan;
  for (quant::Target t : *targets) plan.targets[size_t(t)] = *g;
  for (const std::string& text : a.overrides)
    if (Status st = quant::applyPlanText(text, plan); !st)
      return makeError("--override: " + st.message());
  if (a.attnBits > 0 || a.attnMethod == "binary") {
    plan.attention.kind = a.attnMethod == "log2"     ? quant::AttentionQuant::Kind::Log2
                          : a.attnMethod == "binary" ? quant::AttentionQuant::Kind::Binary
                                                     : quant::AttentionQuant::Kind::Uniform;
    plan.attention.bits = a.attnBits;
    plan.attention.threshold = float(a.attnThreshold);
    if (Status st = quant::validate(plan.attention); !st) return st.error();
  }
  return plan;
}
}  // namespace

int runQuantize(const QuantizeArgs& a) {
  auto plan = planFrom(a);
  if (!plan) return fail(plan.message());
  if (!a.dump.empty() && std::filesystem::path(a.dump).extension() != ".safetensors")
    return fail("--dump must end in .safetensors");
  auto loaded = load(a.model);
  if (!loaded) return fail(loaded.message());
  const Model& m = **loaded;
  const std::string defaultText = "The quick brown fox jumps over the lazy dog.";
  std::vector<int32_t> ids;
  std::string text;
  if (!a.ids.empty()) {
    auto parsed = parseIntList(a.ids, "--ids");
    if (!parsed) return fail(parsed.message());
    ids = *parsed;
  } else {
    if (!m.tokenizer) return fail("'" + a.model + "' has no tokenizer files; pass --ids instead");
    text = a.text.empty() ? defaultText : a.text;
    ids = m.tokenizer->encode(text).ids;
  }
  ThreadPool pool(threadCount(a.threads));
  quant::QuantizeModelOptions qo;
  qo.pool = &pool;
  qo.keepCodes = !a.dump.empty() || (!a.out.empty() && a.format != "hf");
  auto q = quant::quantizeModel(m, *plan, qo);
  if (!q) return fail(q.message());
  ForwardOptions fo;
  fo.pool = &pool;
  auto ref = forward(m.config, m.weights, ids, {}, fo);
  if (!ref) return fail(ref.message());
  auto got = forward(q->model->config, q->model->weights, ids, {},
                     quant::withAttentionQuant(fo, plan->attention));
  if (!got) return fail(got.message());
  const Fidelity fid = fidelity(*ref, *got);
  if (!a.dump.empty())
    if (Status st = writeQuantDump(a.dump, *q); !st) return fail(st.message());
  if (!a.out.empty()) {
    compress::AppliedPlan applied;
    applied.model = q->model;
    applied.quantized = q->tensors;
    applied.codes = compress::sharedCodes(std::move(q->codes));
    applied.bytesBefore = q->bytesBefore;
    applied.bytesAfter = q->bytesAfter;
    compress::CompressionPlan recorded;
    recorded.quant = *plan;
    if (Status st = writeModelAs(a.out, a.format, m, applied, recorded, a.model); !st)
      return fail(st.message());
  }

  if (a.json) {
    Json j;
    j["model"] = a.model;
    if (!q->tensors.empty()) j["spec"] = quant::describe(q->tensors.front().spec);
    Json ts = Json::array();
    for (const auto& t : q->tensors)
      ts.push_back({{"name", t.name},
                    {"mse", t.stats.mse},
                    {"sqnr_db", t.stats.sqnrDb},
                    {"max_abs_err", t.stats.maxAbsError},
                    {"bits_per_weight", t.stats.bitsPerWeight}});
    j["tensors"] = ts;
    j["bytes_before"] = q->bytesBefore;
    j["bytes_after"] = q->bytesAfter;
    if (!text.empty()) j["text"] = text;
    j["ids"] = ids;
    j["attention_kl_mean"] = fid.klMean;
    j["attention_js_mean"] = fid.jsMean;
    j["hidden_cosine"] = fid.hiddenCosine;
    if (!a.out.empty()) j["out"] = a.out;
    if (!a.dump.empty()) j["dump"] = a.dump;
    printJson(j);
    return 0;
  }
  if (!q->tensors.empty())
    std::printf("%s, %zu tensors\n", quant::describe(q->tensors.front().spec).c_str(),
                q->tensors.size());
  std::printf("%-52s %12s %9s %12s %6s\n", "tensor", "mse", "sqnr_db", "max_abs_err", "bits");
  for (const auto& t : q->tensors)
    std::printf("%-52s %12.4g %9.2f %12.4g %6.3f\n", t.name.c_str(), t.stats.mse, t.stats.sqnrDb,
                t.stats.maxAbsError, t.stats.bitsPerWeight);
  std::printf("model: %.2f MB -> %.2f MB (float32 before)\n", q->bytesBefore / 1e6,
              q->bytesAfter / 1e6);
  std::printf("attention on %zu tokens: KL %.4g, JS %.4g; final hidden cosine %.6f\n", ids.size(),
              fid.klMean, fid.jsMean, fid.hiddenCosine);
  if (!a.out.empty()) std::printf("wrote %s\n", a.out.c_str());
  if (!a.dump.empty()) std::printf("wrote %s\n", a.dump.c_str());
  return 0;
}

}  // namespace attn::cli

namespace attn::cli {

namespace {
Status writeMaskDump(const std::string& path, const sparse::SparseModel& s) {
  std::vector<std::pair<std::string, Tensor>> ts;
  std::map<std::string, std::string> meta = {
      {"format", "attnstudio-mask-dump"},
      {"layout", "uint8 0/1 (1 = kept) as [out, in]; GPT-2 Conv1D weights transposed"}};
  for (const auto& t : s.tensors)
    ts.emplace_back(t.name + ".mask",
                    ownedTensor(DType::U8, {t.mask.rows(), t.mask.cols()}, t.mask.bytes()));
  return writeSafetensors(path, ts, meta);
}
}  // namespace

int runSparsify(const SparsifyArgs& a) {
  sparse::ModelPrunePlan plan;
  sparse::AttentionRule& rule = plan.attention.all;
  using K = sparse::AttentionRule::Kind;
  if (!std::isnan(a.attnThreshold)) rule.kind = K::Threshold, rule.tau = a.attnThreshold;
  if (a.attnTopK > 0) rule.kind = K::TopK, rule.k = a.attnTopK;
  if (a.attnMass > 0) rule.kind = K::Mass, rule.mass = a.attnMass;
  rule.renormalize = a.renormalize;
  if (Status st = sparse::validate(rule); !st) return fail(st.message());
  if (!a.prune.empty()) {
    sparse::PruneSpec s;
    s.sparsity = a.sparsity;
    s.norm = a.norm;
    auto spec = sparse::parsePruneMethod(a.prune, s);
    if (!spec) return fail(spec.message());
    auto targets = parseTargets(a.targets);
    if (!targets) return fail(targets.message());
    for (Target t : *targets) plan.targets[size_t(t)] = *spec;
  }
  if (!a.dump.empty() && std::filesystem::path(a.dump).extension() != ".safetensors")
    return fail("--dump must end in .safetensors");
  auto loaded = load(a.model);
  if (!loaded) return fail(loaded.message());
  const Model& m = **loaded;
  int truncated = 0;
  auto inputs = inputsFor(m, a.ids, a.text, a.corpus, a.column, &truncated);
  if (!inputs) return fail(inputs.message());
  ThreadPool pool(threadCount(a.threads));
  sparse::SparsifyOptions so;
  so.pool = &pool;
  std::vector<double> importance;
  if (a.pruneHeads > 0) {
    auto by = sparse::parseImportance(a.importance);
    if (!by) return fail(by.message());
    auto scores = sparse::headImportance(m, *inputs, *by, so);
    if (!scores) return fail(scores.message());
    const auto rank = scores->ranking();
    if (a.pruneHeads > int(rank.size()))
      return fail("--prune-heads " + std::to_string(a.pruneHeads) + ": the model has only " +
                  std::to_string(rank.size()) + " heads");
    plan.heads.assign(rank.begin(), rank.begin() + a.pruneHeads);
    importance = scores->score;
  }
  auto pruned = sparse::pruneModel(m, plan, so);
  if (!pruned) return fail(pruned.message());

  // Fidelity on the first input: dense float model vs pruned model with sparse attention.
  ForwardOptions fo;
  fo.pool = &pool;
  const std::vector<int32_t>& ids = inputs->front();
  auto ref = forward(m.config, m.weights, ids, {}, fo);
  if (!ref) return fail(ref.message());
  const int L = m.config.layers, H = m.config.heads;
  std::vector<sparse::SparsityCounts> counts(size_t(L) * H);
  auto got = forward(pruned->model->config, pruned->model->weights, ids, {},
                     sparse::withAttentionSparsity(fo, plan.attention, &counts, H));
  if (!got) return fail(got.message());
  const Fidelity fid = fidelity(*ref, *got);
  std::vector<double> attnSparsity(size_t(L), 0.0);
  sparse::SparsityCounts all;
  for (int l = 0; l < L; ++l) {
    sparse::SparsityCounts layer;
    for (int h = 0; h < H; ++h) layer.add(counts[size_t(l) * H + h]);
    attnSparsity[size_t(l)] = layer.sparsity();
    all.add(layer);
  }
  if (!a.out.empty()) {
    compress::AppliedPlan applied;
    applied.model = pruned->model;
    applied.pruned = pruned->tensors;
    compress::CompressionPlan recorded;
    recorded.prune = plan;
    if (Status st = writeModelAs(a.out, a.format, m, applied, recorded, a.model); !st)
      return fail(st.message());
  }
  if (!a.dump.empty())
    if (Status st = writeMaskDump(a.dump, *pruned); !st) return fail(st.message());

  if (a.json) {
    Json j;
    j["model"] = a.model;
    Json ts = Json::array();
    for (const auto& t : pruned->tensors)
      ts.push_back({{"name", t.name},
                    {"sparsity", t.mask.sparsity()},
                    {"dense_bytes", t.bytes.dense},
                    {"bitmap_bytes", t.bytes.bitmap},
                    {"csr_bytes", t.bytes.csr}});
    j["tensors"] = ts;
    j["weight_sparsity"] = pruned->sparsity();
    j["layer_sparsity"] = pruned->layerSparsity;
    j["attention_sparsity"] = all.sparsity();
    j["attention_sparsity_per_layer"] = attnSparsity;
    j["retained_mass"] = all.retainedMass();
    j["attention_kl_mean"] = fid.klMean;
    j["attention_js_mean"] = fid.jsMean;
    j["hidden_cosine"] = fid.hiddenCosine;
    Json heads = Json::array();
    for (const auto& [l, h] : pruned->heads) heads.push_back({l, h});
    j["pruned_heads"] = heads;
    if (!importance.empty()) j["head_importance"] = importance;
    j["inputs"] = inputs->size();
    if (truncated > 0) j["truncated_inputs"] = truncated;
    if (!a.out.empty()) j["out"] = a.out;
    if (!a.dump.empty()) j["dump"] = a.dump;
    printJson(j);
    return 0;
  }
  std::printf("%-52s %9s %12s %12s\n", "tensor", "sparsity", "bitmap_B", "csr_B");
  for (const auto& t : pruned->tensors)
    std::printf("%-52s %8.2f%% %12lld %12lld\n", t.name.c_str(), 100 * t.mask.sparsity(),
                (long long)t.bytes.bitmap, (long long)t.bytes.csr);
  std::printf("weights: %.2f%% zero over the pruned matrices\n", 100 * pruned->sparsity());
  for (const auto& [l, h] : pruned->heads) std::printf("removed head %d of layer %d\n", h, l);
  std::printf(
      "attention on %zu tokens: %.2f%% dropped, %.4f mass kept; KL %.4g, JS %.4g; final "
      "hidden cosine %.6f\n",
      ids.size(), 100 * all.sparsity(), all.retainedMass(), fid.klMean, fid.jsMean,
      fid.hiddenCosine);
  if (truncated > 0) std::printf("%d inputs truncated to the model's length\n", truncated);
  if (!a.out.empty()) std::printf("wrote %s\n", a.out.c_str());
  if (!a.dump.empty()) std::printf("wrote %s\n", a.dump.c_str());
  return 0;
}

}  // namespace attn::cli
