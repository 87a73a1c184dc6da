// attnstudio-cli compare / distill / pretrain / init-model / build-tokenizer.
#include <chrono>
#include <cmath>
#include <fstream>
#include <iostream>

#include "app/cli/cli_util.h"
#include "app/cli/commands.h"
#include "app/cli/recipe.h"
#include "core/attention/align.h"
#include "core/attention/compare.h"
#include "core/distill/init.h"
#include "core/distill/mapping.h"
#include "core/distill/trainer.h"
#include "core/text/bpe_train.h"
#include "core/text/corpus.h"

namespace attn::cli {

namespace {

// One input for both models: the same ids, or each model's own tokenization of
// the same text with the alignment between them.
struct PairedInput {
  std::vector<int32_t> teacherIds, studentIds;
  bool aligned = false;
  TokenAlignment alignment;
};

Result<std::vector<PairedInput>> pairedInputs(const Model& t, const Model& s,
                                              const CompareArgs& a, int* truncated) {
  std::vector<PairedInput> out;
  if (!a.ids.empty()) {
    auto ids = parseIntList(a.ids, "--ids");
    if (!ids) return ids.error();
    out.push_back({*ids, *ids, false, {}});
    return out;
  }
  if (!t.tokenizer || !s.tokenizer)
    return makeError("both models need tokenizer files for --text/--corpus; pass --ids instead");
  std::vector<std::string> texts;
  if (!a.corpus.empty()) {
    auto r = text::readCorpus(a.corpus, a.column);
    if (!r) return r.error();
    texts = std::move(*r);
    if (texts.empty()) return makeError("'" + a.corpus + "' has no examples");
  } else {
    texts.push_back(a.text.empty() ? "The quick brown fox jumps over the lazy dog." : a.text);
  }
  const int limit = std::min(t.config.maxPositions, s.config.maxPositions);
  for (const std::string& text : texts) {
    text::Encoding et = t.tokenizer->encode(text), es = s.tokenizer->encode(text);
    if (static_cast<int>(et.ids.size()) > limit || static_cast<int>(es.ids.size()) > limit) {
      ++*truncated;
      auto cut = [&](text::Encoding& e) {
        if (static_cast<int>(e.ids.size()) <= limit) return;
        e.ids.resize(size_t(limit));
        e.offsets.resize(size_t(limit));
      };
      cut(et);
      cut(es);
    }
    PairedInput p{et.ids, es.ids, false, {}};
    if (et.ids != es.ids) {
      p.aligned = true;
      p.alignment = alignTokens(et.offsets, es.offsets);
    }
    out.push_back(std::move(p));
  }
  return out;
}

Result<std::vector<int>> resolveMapping(const std::string& text, const std::vector<double>& loss,
                                        int Lt, int Ls) {
  if (text == "auto") return bestMonotoneMap(loss, Lt, Ls);
  return distill::parseMapping(text, Lt, Ls);
}

// Mean loss matrices over the inputs (MSE and KL, [Lt][Ls]).
Result<LossMatrix> meanLossMatrix(const Model& t, const Model& s,
                                  const std::vector<PairedInput>& inputs, ThreadPool* pool) {
  LossMatrix mean;
  ForwardOptions fo;
  fo.pool = pool;
  for (const PairedInput& in : inputs) {
    auto tr = forward(t.config, t.weights, in.teacherIds, {}, fo);
    if (!tr) return makeError("teacher: " + tr.message());
    auto sr = forward(s.config, s.weights, in.studentIds, {}, fo);
    if (!sr) return makeError("student: " + sr.message());
    const LossMatrix m =
        in.aligned ? lossMatrix(alignedAttention(*tr, in.alignment.groupA, in.alignment.groups),
                                alignedAttention(*sr, in.alignment.groupB, in.alignment.groups))
                   : lossMatrix(*tr, *sr);
    if (mean.mse.empty()) {
      mean = m;
      continue;
    }
    for (size_t i = 0; i < m.mse.size(); ++i) {
      mean.mse[i] += m.mse[i];
      mean.kl[i] += m.kl[i];
    }
    for (size_t i = 0; i < m.headMse.size() && i < mean.headMse.size(); ++i) {
      mean.headMse[i] += m.headMse[i];
      mean.headKl[i] += m.headKl[i];
    }
  }
  const double n = static_cast<double>(inputs.size());
  for (auto* v : {&mean.mse, &mean.kl, &mean.headMse, &mean.headKl})
    for (double& x : *v) x /= n;
  return mean;
}

}  // namespace

int runCompare(const CompareArgs& a) {
  auto teacher = load(a.teacher);
  if (!teacher) return fail(teacher.message());
  auto student = load(a.student);
  if (!student) return fail(student.message());
  if (a.loss != "mse" && a.loss != "kl") return fail("--loss must be mse or kl");
  int truncated = 0;
  auto inputs = pairedInputs(**teacher, **student, a, &truncated);
  if (!inputs) return fail(inputs.message());
  ThreadPool pool(threadCount(a.threads));
  auto lm = meanLossMatrix(**teacher, **student, *inputs, &pool);
  if (!lm) return fail(lm.message());
  const int Lt = lm->teacherLayers, Ls = lm->studentLayers;
  const std::vector<double>& loss = a.loss == "kl" ? lm->kl : lm->mse;
  auto mapping = resolveMapping(a.map, loss, Lt, Ls);
  if (!mapping) return fail(mapping.message());
  Json matrix = Json::array();
  for (int t = 0; t < Lt; ++t) {
    Json row = Json::array();
    for (int s = 0; s < Ls; ++s) row.push_back(lm->at(loss, t, s));
    matrix.push_back(row);
  }
  Json mapped = Json::array();
  double total = 0.0;
  for (int s = 0; s < Ls; ++s) {
    const int t = (*mapping)[s];
    if (t < 0) {
      mapped.push_back(nullptr);
      continue;
    }
    mapped.push_back(lm->at(loss, t, s));
    total += lm->at(loss, t, s);
  }
  bool aligned = false;
  for (const auto& in : *inputs) aligned = aligned || in.aligned;
  if (a.json) {
    Json j;
    j["teacher"] = a.teacher;
    j["student"] = a.student;
    j["loss"] = a.loss;
    j["examples"] = inputs->size();
    j["truncated"] = truncated;
    j["aligned_tokens"] = aligned;
    j["heads"] = (*teacher)->config.heads == (*student)->config.heads ? "one to one" : "averaged";
    j["loss_matrix"] = matrix;
    j["mapping"] = *mapping;
    j["mapped_losses"] = mapped;
    // Per student head of each mapped layer: against the same teacher head when
    // the head counts match, else against the teacher layer's head average.
    Json heads = Json::array();
    const std::vector<double>& perHead = a.loss == "kl" ? lm->headKl : lm->headMse;
    for (int s = 0; s < Ls; ++s) {
      const int t = (*mapping)[s];
      if (t < 0 || perHead.empty()) {
        heads.push_back(nullptr);
        continue;
      }
      Json row = Json::array();
      for (int h = 0; h < lm->studentHeads; ++h) row.push_back(lm->headAt(perHead, t, s, h));
      heads.push_back(row);
    }
    j["mapped_head_losses"] = heads;
    j["total"] = total;
    printJson(j);
    return 0;
  }
  std::printf("%s loss over %zu input(s)%s, teacher layers (rows) x student layers:\n",
              a.loss.c_str(), inputs->size(), aligned ? " (token groups aligned)" : "");
  for (int t = 0; t < Lt; ++t) {
    std::printf("  T%-3d", t);
    for (int s = 0; s < Ls; ++s)
      std::printf(" %10.5f%s", lm->at(loss, t, s), (*mapping)[s] == t ? "*" : " ");
    std::printf("\n");
  }
  std::printf("mapping %s (*), total %.6f\n", distill::mappingText(*mapping).c_str(), total);
  return 0;
}

namespace {

Result<distill::GroupLasso> parseGroupLasso(const std::string& text) {
  distill::GroupLasso g;
  if (text.empty()) return g;
  const size_t colon = text.find(':');
  const std::string kind = text.substr(0, colon);
  if (kind == "heads")
    g.groups = distill::GroupLasso::Groups::Heads;
  else if (kind == "ffn")
    g.groups = distill::GroupLasso::Groups::Ffn;
  else
    return makeError("--group-lasso: expected heads:λ or ffn:λ, got '" + text + "'");
  try {
    g.lambda = colon == std::string::npos ? 1e-4 : std::stod(text.substr(colon + 1));
  } catch (...) {
    return makeError("--group-lasso: '" + text.substr(colon + 1) + "' is not a number");
  }
  if (!(g.lambda >= 0)) return makeError("--group-lasso: λ must be ≥ 0");
  return g;
}

Json lossJson(const distill::LossValues& v) {
  Json j;
  j["loss"] = v.total;
  j["attention"] = v.attention;
  j["value"] = v.value;
  j["hidden"] = v.hidden;
  j["logit"] = v.logit;
  j["lm"] = v.lm;
  return j;
}

}  // namespace

int runDistill(const DistillArgs& a) {
  const bool pretrain = a.teacher.empty();
  auto student = load(a.student);
  if (!student) return fail(student.message());
  std::shared_ptr<const Model> teacher;
  if (!pretrain) {
    auto t = load(a.teacher);
    if (!t) return fail(t.message());
    teacher = *t;
  }
  const Model& s = **student;
  if (!s.tokenizer) return fail("the student has no tokenizer files to read the corpus with");
  if (a.out.empty() && a.emitRecipe.empty()) return fail("give --out DIR (and/or --emit-recipe DIR)");
  auto texts = text::readCorpus(a.corpus, a.column);
  if (!texts) return fail(texts.message());
  if (teacher && teacher->tokenizer) {
    // The trainer feeds both models the same ids: their tokenizers must agree.
    for (size_t i = 0; i < std::min<size_t>(texts->size(), 32); ++i)
      if (teacher->tokenizer->encode((*texts)[i]).ids != s.tokenizer->encode((*texts)[i]).ids)
        return fail("teacher and student tokenize the corpus differently (example " +
                    std::to_string(i + 1) + "); distillation needs a shared vocabulary");
  }
  int seq = a.seq;
  if (seq <= 0) {
    seq = std::min(128, s.config.maxPositions);
    if (teacher) seq = std::min(seq, teacher->config.maxPositions);
  }
  distill::TokenizedCorpus corpus = distill::tokenizeCorpus(*s.tokenizer, *texts, seq);
  if (corpus.examples.empty()) return fail("'" + a.corpus + "' has no examples");

  distill::TrainOptions o;
  o.steps = a.steps;
  o.batch = a.batch;
  o.seq = seq;
  o.lr = a.lr;
  o.warmup = a.warmup >= 0 ? a.warmup : static_cast<int>(std::lround(0.06 * a.steps));
  o.weightDecay = a.weightDecay;
  o.clip = a.clip;
  o.seed = a.seed;
  o.threads = threadCount(a.threads);
  distill::LossOptions& L = o.loss;
  if (pretrain) {
    L.attention = distill::AttentionLoss::None;
    L.lmWeight = 1.0;
    L.mapping.assign(size_t(s.config.layers), -1);
  } else {
    std::string att = a.loss;
    const size_t plus = att.find("+value");
    L.valueWeight = 0.0;
    if (plus != std::string::npos) {
      att = att.substr(0, plus);
      L.valueWeight = a.valueWeight;
    }
    auto kind = distill::parseAttentionLoss(att);
    if (!kind) return fail("--loss: " + kind.message());
    L.attention = *kind;
    L.attentionWeight = a.attentionWeight;
    auto heads = distill::parseHeadMode(a.heads);
    if (!heads) return fail("--heads: " + heads.message());
    L.heads = *heads;
    L.relationHeads = a.relationHeads;
    L.hiddenWeight = a.hiddenWeight;
    L.logitWeight = a.logitWeight;
    L.temperature = a.temperature;
    L.lmWeight = a.lmWeight;
    std::vector<double> autoLoss;
    if (a.map == "auto") {
      // The mapping with the least loss between the teacher and the starting
      // student on the first examples of the corpus.
      CompareArgs ca;
      ca.corpus = a.corpus;
      ca.column = a.column;
      int truncated = 0;
      auto inputs = pairedInputs(*teacher, s, ca, &truncated);
      if (!inputs) return fail(inputs.message());
      if (inputs->size() > 16) inputs->resize(16);
      ThreadPool pool(o.threads);
      auto lm = meanLossMatrix(*teacher, s, *inputs, &pool);
      if (!lm) return fail(lm.message());
      autoLoss = att == "mse" || att == "frobenius" ? lm->mse : lm->kl;
    }
    auto mapping = resolveMapping(a.map, autoLoss, teacher->config.layers, s.config.layers);
    if (!mapping) return fail("--map: " + mapping.message());
    L.mapping = *mapping;
  }
  auto gl = parseGroupLasso(a.groupLasso);
  if (!gl) return fail(gl.message());
  o.groupLasso = *gl;
  if (!a.qat.empty()) {
    quant::ModelQuantPlan plan;
    if (Status st = quant::applyPlanText(a.qat, plan); !st) return fail("--qat: " + st.message());
    o.qat = plan;
  }
  if (a.checkpointEvery > 0) {
    if (a.out.empty()) return fail("--checkpoint-every needs --out");
    o.checkpointEvery = a.checkpointEvery;
    o.checkpointDir = a.out + ".checkpoints";
  }

  auto trainer = distill::Trainer::create(*student, teacher, corpus, o);
  if (!trainer) return fail(trainer.message());
  distill::Trainer& tr = **trainer;
  if (!a.resume.empty())
    if (Status st = tr.resumeFrom(a.resume); !st) return fail(st.message());

  if (!a.emitRecipe.empty()) {
    RecipeInputs ri{a.teacher, a.student, corpus, tr.options(), a.seed, &tr};
    if (Status st = writeRecipe(a.emitRecipe, ri); !st) return fail(st.message());
    std::cerr << "recipe written to " << a.emitRecipe << " (torchrun --nproc_per_node=N "
              << a.emitRecipe << "/train.py --config " << a.emitRecipe << "/config.json)\n";
    if (a.out.empty()) return 0;
  }

  std::ofstream log;
  if (!a.log.empty()) {
    log.open(a.log, std::ios::trunc);
    if (!log) return fail("cannot write '" + a.log + "'");
  }
  // Held-out view: the first examples of the corpus, before and after.
  std::vector<std::vector<int32_t>> probe(
      corpus.examples.begin(),
      corpus.examples.begin() + static_cast<long>(std::min<size_t>(corpus.examples.size(), 64)));
  auto before = tr.evaluate(probe);
  if (!before) return fail(before.message());
  if (corpus.truncated > 0)
    std::cerr << corpus.truncated << " example(s) longer than " << seq << " tokens were cut\n";
  distill::RunControl control;
  double first = NAN, last = NAN, speed = 0.0;
  int logged = 0;
  const int every = std::max(1, a.steps / 20);
  const Status st = tr.run(control, [&](const distill::StepReport& r) {
    if (std::isnan(first)) first = r.loss.total;
    last = r.loss.total;
    speed += r.examplesPerSecond;
    ++logged;
    if (log.is_open()) {
      Json j = {{"step", r.step}};
      j.update(lossJson(r.loss));
      j["group_lasso"] = r.groupLasso;
      j["lr"] = r.lr;
      j["grad_norm"] = r.gradNorm;
      j["examples_per_s"] = r.examplesPerSecond;
      log << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
      log.flush();
    }
    if (!a.json && (r.step % every == 0 || r.step == r.steps))
      std::fprintf(stderr, "step %d/%d  loss %.5f  lr %.2e  %.0f examples/s\n", r.step, r.steps,
                   r.loss.total, r.lr, r.examplesPerSecond);
  });
  if (!st) return fail(st.message());
  auto after = tr.evaluate(probe);
  if (!after) return fail(after.message());
  if (a.format == "hf") {  // float weights (after QAT too: quantize or export them next)
    if (Status w = tr.save(a.out); !w) return fail(w.message());
  } else {  // the trained weights as codes: the --qat plan (what training saw), else dense
    Model trained = s;  // its checkpoint supplies the tensors the trainer does not hold
    trained.weights = *tr.weights();
    compress::CompressionPlan plan;
    if (o.qat) plan.quant = *o.qat;
    auto applied = compress::applyPlan(trained, plan);
    if (!applied) return fail(applied.message());
    if (Status w = writeModelAs(a.out, a.format, trained, *applied, plan, a.student); !w)
      return fail(w.message());
  }
  if (a.json) {
    Json j;
    j["steps"] = tr.completedSteps();
    j["examples"] = corpus.examples.size();
    j["truncated"] = corpus.truncated;
    j["mapping"] = L.mapping;
    j["first_step_loss"] = first;
    j["last_step_loss"] = last;
    j["before"] = lossJson(*before);
    j["after"] = lossJson(*after);
    j["examples_per_s"] = logged > 0 ? speed / logged : 0.0;
    j["out"] = a.out;
    printJson(j);
  } else {
    std::printf("loss on the first %zu examples: %.6f -> %.6f; student written to %s\n",
                probe.size(), before->total, after->total, a.out.c_str());
  }
  return 0;
}

int runInitModel(const InitModelArgs& a) {
  std::ifstream in(a.config, std::ios::binary);
  if (!in) return fail("cannot read '" + a.config + "'");
  const std::string json((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (Status st = distill::writeInitialModel(a.out, json, a.tokenizer, a.seed); !st)
    return fail(st.message());
  auto m = load(a.out);
  if (!m) return fail("the written model does not load: " + m.message());
  std::printf("%s: %s, %d layers, %d heads, hidden %d, %lld parameters\n", a.out.c_str(),
              architectureName((*m)->config.arch).c_str(), (*m)->config.layers,
              (*m)->config.heads, (*m)->config.hidden,
              static_cast<long long>((*m)->parameters));
  return 0;
}

int runBuildTokenizer(const BuildTokenizerArgs& a) {
  auto texts = text::readCorpus(a.corpus, a.column);
  if (!texts) return fail(texts.message());
  auto st = text::trainByteLevelBpe(*texts, a.vocabSize, a.eos, a.out);
  if (!st) return fail(st.message());
  std::printf("%s: byte-level BPE, %d tokens (%d merges)\n", a.out.c_str(), st->vocabSize,
              st->merges);
  return 0;
}

}  // namespace attn::cli
