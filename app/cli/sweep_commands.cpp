// attnstudio-cli sweep: a compression plan measured over a corpus (core/compress/evaluate.h),
// varying up to two of its parameters; prints a table (or JSON) of the points with the
// Pareto front of bits per weight against attention KL, or — without --vary — the
// plan's per-layer, per-head KL and JS.
#include <cmath>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "app/cli/cli_util.h"
#include "app/cli/commands.h"
#include "core/attention/compare.h"
#include "core/compress/evaluate.h"
#include "core/io/atomic_file.h"
#include "core/text/corpus.h"

namespace attn::cli {

namespace {

Result<compress::SweepAxis> parseVary(const std::string& text) {
  const size_t eq = text.find('=');
  if (eq == std::string::npos) return makeError("--vary '" + text + "': expected PARAM=V1,V2,…");
  auto param = compress::parseSweepParam(text.substr(0, eq));
  if (!param) return makeError("--vary '" + text + "': " + param.message());
  compress::SweepAxis axis;
  axis.param = *param;
  std::stringstream values(text.substr(eq + 1));
  std::string v;
  while (std::getline(values, v, ',')) {
    char* end = nullptr;
    const double x = std::strtod(v.c_str(), &end);
    if (v.empty() || end == nullptr || *end != '\0' || !std::isfinite(x))
      return makeError("--vary '" + text + "': '" + v + "' is not a number");
    axis.values.push_back(x);
  }
  if (axis.values.empty()) return makeError("--vary '" + text + "': no values");
  return axis;
}

Json number(double v) { return std::isfinite(v) ? Json(v) : Json(nullptr); }

Json evaluationJson(const compress::Evaluation& e) {
  Json j;
  j["sentences"] = e.sentences;
  j["bytes_before"] = e.size.before;
  j["bytes_after"] = e.size.after;
  j["bits_per_weight"] = e.size.bitsPerWeight();
  j["weight_sparsity"] = e.weightSparsity;
  j["attention_sparsity"] = e.attention.sparsity();
  j["attention_kl"] = e.klMean;
  j["attention_js"] = e.jsMean;
  j["hidden_cosine"] = e.hiddenCosine;
  j["teacher_kl"] = number(e.teacherKl);
  j["student_teacher_kl"] = number(e.studentTeacherKl);
  return j;
}

}  // namespace

int runSweep(const SweepArgs& a) {
  std::vector<compress::SweepAxis> axes;
  for (const auto& v : a.vary) {
    auto axis = parseVary(v);
    if (!axis) return fail(axis.message());
    axes.push_back(std::move(*axis));
  }
  if (axes.size() > 2) return fail("--vary: at most two parameters");
  if (!a.text.empty() && !a.corpus.empty()) return fail("give --text or --corpus, not both");
  compress::CompressionPlan plan;
  if (!a.plan.empty()) {
    auto p = compress::loadPlan(a.plan);
    if (!p) return fail(p.message());
    plan = std::move(*p);
  }
  auto model = load(a.model);
  if (!model) return fail(model.message());
  std::shared_ptr<const Model> teacher;
  if (!a.teacher.empty()) {
    auto t = load(a.teacher);
    if (!t) return fail(t.message());
    teacher = *t;
  }
  std::vector<std::string> texts;
  if (!a.corpus.empty()) {
    auto rows = text::readCorpus(a.corpus, a.column);
    if (!rows) return fail(rows.message());
    texts = std::move(*rows);
    if (int(texts.size()) > a.maxSentences) texts.resize(size_t(a.maxSentences));
  } else {
    texts = {a.text.empty() ? std::string("The cat sat on the mat because it was warm.") : a.text};
  }
  ThreadPool pool(threadCount(a.threads));
  const std::vector<int> mapping =
      teacher ? uniformLayerMap((*model)->config.layers, teacher->config.layers) : std::vector<int>{};
  auto ref = compress::makeReference(**model, teacher.get(), texts, mapping, &pool);
  if (!ref) return fail(ref.message());
  if (teacher && ref->teacherSentences() == 0)
    std::cerr << "warning: the teacher tokenizes every sentence differently; no KL to the teacher\n";

  Json out;
  out["model"] = a.model;
  out["sentences"] = int(ref->ids.size());
  if (axes.empty()) {  // the plan alone, per head
    auto applied = compress::applyPlan(**model, plan, &pool, nullptr, false, false);
    if (!applied) return fail(applied.message());
    auto e = compress::evaluatePlan(**model, *applied, plan, *ref, &pool);
    if (!e) return fail(e.message());
    out["plan"] = evaluationJson(*e);
    Json heads = Json::array();
    for (int l = 0; l < e->layers; ++l)
      for (int h = 0; h < e->heads; ++h)
        heads.push_back({{"layer", l}, {"head", h}, {"kl", e->headKl[size_t(l * e->heads + h)]},
                         {"js", e->headJs[size_t(l * e->heads + h)]}});
    out["heads"] = heads;
    if (a.json) {
      printJson(out);
      return 0;
    }
    std::printf("%d sentences: attention KL %.4g, JS %.4g, hidden cosine %.5f, %.2f bits/weight\n",
                e->sentences, e->klMean, e->jsMean, e->hiddenCosine, e->size.bitsPerWeight());
    std::printf("KL per head (rows: layers):\n");
    for (int l = 0; l < e->layers; ++l) {
      std::printf("  L%-3d", l);
      for (int h = 0; h < e->heads; ++h) std::printf(" %9.3g", e->headKl[size_t(l * e->heads + h)]);
      std::printf("\n");
    }
    return 0;
  }
  auto points = compress::sweep(**model, plan, axes, *ref, &pool, nullptr,
                                [&](const compress::SweepPoint& p, int i, int n) {
                                  if (!a.json)
                                    std::cerr << "point " << i + 1 << " of " << n << " ("
                                              << p.eval.size.bitsPerWeight() << " bits/weight)\n";
                                });
  if (!points) return fail(points.message());
  // The front: bits per weight against KL to the teacher (to the student without one).
  std::vector<double> x, y;
  for (const auto& p : *points) {
    x.push_back(p.eval.size.bitsPerWeight());
    y.push_back(teacher && ref->teacherSentences() > 0 ? p.eval.teacherKl : p.eval.klMean);
  }
  const std::vector<int> front = compress::paretoFront(x, y);
  Json rows = Json::array();
  std::string csv;
  for (const auto& ax : axes) csv += std::string(compress::sweepParamName(ax.param)) + ",";
  csv += "bits_per_weight,bytes_after,attention_kl,attention_js,hidden_cosine,teacher_kl,"
         "attention_sparsity,weight_sparsity,pareto\n";
  for (size_t i = 0; i < points->size(); ++i) {
    const auto& p = (*points)[i];
    const bool onFront = std::find(front.begin(), front.end(), int(i)) != front.end();
    Json j;
    for (size_t k = 0; k < axes.size(); ++k) j[compress::sweepParamName(axes[k].param)] = p.values[k];
    j.update(evaluationJson(p.eval));
    j["pareto"] = onFront;
    j["plan"] = Json::parse(compress::planJson(p.plan));
    rows.push_back(j);
    char line[512];
    std::string vals;
    for (double v : p.values) vals += std::to_string(v) + ",";
    std::snprintf(line, sizeof line, "%.6g,%lld,%.9g,%.9g,%.9g,%s,%.6g,%.6g,%d\n", x[i],
                  (long long)p.eval.size.after, p.eval.klMean, p.eval.jsMean, p.eval.hiddenCosine,
                  std::isfinite(p.eval.teacherKl) ? std::to_string(p.eval.teacherKl).c_str() : "",
                  p.eval.attention.sparsity(), p.eval.weightSparsity, onFront ? 1 : 0);
    csv += vals + line;
  }
  out["points"] = rows;
  if (!a.csv.empty()) {
    Status st = writeFileAtomically(a.csv, [&](std::FILE* f) -> Status {
      if (std::fwrite(csv.data(), 1, csv.size(), f) != csv.size()) return makeError("cannot write " + a.csv);
      return Ok{};
    });
    if (!st) return fail(st.message());
  }
  if (a.json) {
    printJson(out);
    return 0;
  }
  std::printf("%s", csv.c_str());
  return 0;
}

}  // namespace attn::cli
