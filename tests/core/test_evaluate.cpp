// Measuring plans (core/compress/evaluate.h): the Pareto front, sweep parameters,
// sizes equal to what the compressed format stores, fidelity over a corpus equal to
// per-sentence measurements, KL to a teacher equal to the loss matrix's, and sweep
// points equal to single runs of the same plans.
#include <QTest>
#include <cmath>

#include "core/attention/compare.h"
#include "core/compress/compressed.h"
#include "core/compress/evaluate.h"
#include "core/model/model.h"
#include "test_helpers.h"

using namespace attn;
using namespace attn::compress;

namespace {
// Sums of doubles taken in a different order differ in the last bits.
constexpr double kSumOrderTol = 1e-12;

std::shared_ptr<const Model> demo(const char* name) {
  auto m = loadModel(test::dataDir() / "shaped_demo" / name);
  if (!m) qFatal("%s", m.message().c_str());
  return std::shared_ptr<const Model>(std::move(*m));
}

const std::vector<std::string> kSentences = {
    "the cat sat on the mat", "a dog barked at the mailman all morning",
    "compression keeps the attention maps close", "short"};

CompressionPlan plan4bit() {
  CompressionPlan p;
  if (!quant::applyPlanText("q,k,v,o,ffn_in,ffn_out=uniform:4:group:16", p.quant)) qFatal("plan");
  p.prune.attention.all.kind = sparse::AttentionRule::Kind::Threshold;
  p.prune.attention.all.tau = 0.01;
  return p;
}
}  // namespace

class TestEvaluate : public QObject {
  Q_OBJECT

 private slots:
  void paretoFrontOfHandMadePoints() {
    //            0    1    2    3    4    5          6
    const std::vector<double> x = {1.0, 2.0, 2.0, 3.0, 4.0, NAN, 0.5};
    const std::vector<double> y = {5.0, 3.0, 4.0, 3.0, 1.0, 0.0, 9.0};
    // 6 (x 0.5) is the smallest x; 0 beats it in y; 1 beats 0; 2 and 3 are beaten
    // by 1 (2: worse y at the same x; 3: same y at larger x); 4 has the best y; 5 is NaN.
    QCOMPARE(paretoFront(x, y), (std::vector<int>{6, 0, 1, 4}));
    QVERIFY(paretoFront({}, {}).empty());
  }

  void sweepParametersEditThePlan() {
    CompressionPlan p;  // nothing: bits quantizes every linear target
    auto b = withParam(p, SweepParam::Bits, 3);
    QVERIFY2(b.ok(), b.ok() ? "" : b.message().c_str());
    for (Target t : {Target::Q, Target::K, Target::V, Target::O, Target::FfnIn, Target::FfnOut}) {
      QVERIFY(b->quant.targets[size_t(t)].has_value());
      QCOMPARE(b->quant.targets[size_t(t)]->bits, 3);
    }
    QVERIFY(!b->quant.targets[size_t(Target::Emb)].has_value());
    // An existing plan keeps its methods and targets, only the width changes.
    auto b2 = withParam(plan4bit(), SweepParam::Bits, 6);
    QVERIFY(b2.ok());
    QCOMPARE(b2->quant.targets[size_t(Target::FfnIn)]->granularity, quant::Granularity::Group);
    QCOMPARE(b2->quant.targets[size_t(Target::FfnIn)]->bits, 6);
    QVERIFY(!withParam(p, SweepParam::Bits, 2.5).ok());
    QVERIFY(!withParam(p, SweepParam::Bits, 9).ok());
    auto t = withParam(p, SweepParam::Tau, 0.05);
    QVERIFY(t.ok());
    QCOMPARE(int(t->prune.attention.all.kind), int(sparse::AttentionRule::Kind::Threshold));
    QCOMPARE(t->prune.attention.all.tau, 0.05);
    QVERIFY(!withParam(p, SweepParam::Tau, 0.0).ok());
    auto s = withParam(p, SweepParam::Sparsity, 0.7);
    QVERIFY(s.ok());
    QCOMPARE(s->prune.targets[size_t(Target::O)]->sparsity, 0.7);
    QVERIFY(!withParam(p, SweepParam::Sparsity, 1.0).ok());
    QCOMPARE(parseSweepParam("tau").value(), SweepParam::Tau);
    QVERIFY(!parseSweepParam("depth").ok());
  }

  // The size a plan claims is what the compressed format stores for the weights.
  void sizeEqualsTheCompressedFormatsBytes_data() {
    QTest::addColumn<QString>("text");
    QTest::addColumn<double>("sparsity");
    QTest::newRow("4-bit groups") << "q,k,v,o,ffn_in,ffn_out=uniform:4:group:16" << 0.0;
    QTest::newRow("pruned only") << "" << 0.6;
    QTest::newRow("pruned and int8") << "q,k=uniform:8:channel" << 0.5;
  }
  void sizeEqualsTheCompressedFormatsBytes() {
    QFETCH(QString, text);
    QFETCH(double, sparsity);
    auto m = demo("bert-demo-student");
    CompressionPlan p;
    if (!text.isEmpty()) QVERIFY(quant::applyPlanText(text.toStdString(), p.quant).ok());
    if (sparsity > 0) {
      auto s = withParam(p, SweepParam::Sparsity, sparsity);
      QVERIFY(s.ok());
      p = *s;
    }
    auto applied = applyPlan(*m, p);
    QVERIFY2(applied.ok(), applied.ok() ? "" : applied.message().c_str());
    auto stored = compressedTensors(*m, *applied, p);
    QVERIFY2(stored.ok(), stored.ok() ? "" : stored.message().c_str());
    int64_t bytes = 0;
    // The format also stores, unchanged, checkpoint tensors the attention model does
    // not use: the demo's task head (pooler.*, F16).
    for (const auto& [name, t] : stored->tensors)
      if (name.rfind("pooler.", 0) != 0) bytes += int64_t(t.nbytes());
    const PlanSize size = planSize(*m, *applied);
    QCOMPARE(size.after, bytes);
    QCOMPARE(size.before, size.weights * 4);
    QVERIFY(size.after < size.before);
    if (sparsity > 0) QVERIFY(std::abs(weightSparsity(*applied) - sparsity) < 0.01);
  }

  // Statistics computed afterwards for one matrix equal those applyPlan reports
  // with histograms, for pruned + quantized matrices and removed heads too.
  void tensorStatsEqualApplyPlans() {
    auto m = demo("bert-demo-student");
    CompressionPlan p = plan4bit();
    QVERIFY(quant::applyPlanText("layer 1 ffn_in=kmeans:3; emb=uniform:8:channel", p.quant).ok());  // 3 emb matrices
    sparse::PruneSpec nm;
    nm.method = sparse::PruneMethod::NM;
    p.prune.targets[size_t(Target::FfnOut)] = nm;
    p.prune.heads = {{0, 1}};
    auto full = applyPlan(*m, p);
    auto lean = applyPlan(*m, p, nullptr, nullptr, false, /*histograms=*/false);
    QVERIFY(full.ok() && lean.ok());
    QCOMPARE(lean->quantized.size(), full->quantized.size());
    QVERIFY(lean->quantized[0].stats.errors.counts.empty());
    for (const auto& want : full->quantized) {
      auto got = tensorStats(*m, *lean, want.name);
      QVERIFY2(got.ok(), got.ok() ? "" : got.message().c_str());
      QCOMPARE(got->name, want.name);
      QCOMPARE(got->stats.errors.counts, want.stats.errors.counts);
      QCOMPARE(got->stats.weights.counts, want.stats.weights.counts);
      QCOMPARE(got->stats.levels, want.stats.levels);
      QCOMPARE(got->stats.mse, want.stats.mse);
      QCOMPARE(got->stats.sqnrDb, want.stats.sqnrDb);
    }
    CompressionPlan none;
    auto plain = applyPlan(*m, none);
    QVERIFY(!tensorStats(*m, *plain, "encoder.layer.0.attention.self.query.weight").ok());
  }

  // Over a corpus: per-head and mean numbers are the means of the per-sentence
  // fidelity measured directly; streamed partial results end in the final one.
  void corpusNumbersAreMeansOfSentences() {
    auto student = demo("bert-demo-student");
    auto teacher = demo("bert-demo");
    const std::vector<int> mapping = uniformLayerMap(student->config.layers, teacher->config.layers);
    auto ref = makeReference(*student, teacher.get(), kSentences, mapping);
    QVERIFY2(ref.ok(), ref.ok() ? "" : ref.message().c_str());
    QCOMPARE(int(ref->ids.size()), int(kSentences.size()));
    QCOMPARE(ref->teacherSentences(), int(kSentences.size()));  // one vocabulary
    const CompressionPlan p = plan4bit();
    auto applied = applyPlan(*student, p);
    QVERIFY(applied.ok());
    std::vector<Evaluation> partial;
    auto e = evaluatePlan(*student, *applied, p, *ref, nullptr, nullptr,
                          [&](const Evaluation& x) { partial.push_back(x); });
    QVERIFY2(e.ok(), e.ok() ? "" : e.message().c_str());
    QCOMPARE(int(partial.size()), int(kSentences.size()));
    QCOMPARE(partial.back().klMean, e->klMean);
    QCOMPARE(partial.back().headKl, e->headKl);
    for (int i = 0; i < int(partial.size()); ++i) QCOMPARE(partial[size_t(i)].sentences, i + 1);

    const size_t LH = size_t(student->config.layers * student->config.heads);
    std::vector<double> headKl(LH, 0.0);
    double kl = 0, cosine = 0, tkl = 0, tskl = 0;
    for (const auto& text : kSentences) {
      const auto ids = student->tokenizer->encode(text).ids;
      auto ref1 = forward(student->config, student->weights, ids, {});
      auto got = forward(applied->model->config, applied->model->weights, ids, {}, forwardOptions(p));
      auto t = forward(teacher->config, teacher->weights, ids, {});
      QVERIFY(ref1.ok() && got.ok() && t.ok());
      const Fidelity f = fidelity(*ref1, *got);
      for (size_t k = 0; k < LH; ++k) headKl[k] += f.kl[k] / double(kSentences.size());
      kl += f.klMean / double(kSentences.size());
      cosine += f.hiddenCosine / double(kSentences.size());
      // KL to the teacher through the loss matrix (its own code path): the mapped pairs.
      // The compressed maps with their rows renormalised (τ dropped mass), as the
      // evaluation compares them.
      ForwardResult normed = *got;
      for (size_t r = 0; r < normed.attention.size() / ids.size(); ++r) {
        float* row = normed.attention.data() + r * ids.size();
        double sum = 0;
        for (size_t j = 0; j < ids.size(); ++j) sum += row[j];
        if (std::abs(sum - 1.0) > 1e-5)
          for (size_t j = 0; j < ids.size(); ++j) row[j] = sum > 0 ? float(row[j] / sum) : 0.0f;
      }
      const LossMatrix lm = lossMatrix(*t, normed), lms = lossMatrix(*t, *ref1);
      double one = 0, ones = 0;
      for (int s = 0; s < student->config.layers; ++s) {
        one += lm.at(lm.kl, mapping[size_t(s)], s) / student->config.layers;
        ones += lms.at(lms.kl, mapping[size_t(s)], s) / student->config.layers;
      }
      tkl += one / double(kSentences.size());
      tskl += ones / double(kSentences.size());
    }
    ATTN_CHECK_CLOSE(e->headKl.data(), headKl.data(), LH, kSumOrderTol, "per-head KL");
    QVERIFY(std::abs(e->klMean - kl) <= kSumOrderTol);
    QVERIFY(std::abs(e->hiddenCosine - cosine) <= kSumOrderTol);
    QVERIFY2(std::abs(e->teacherKl - tkl) <= 1e-9 * std::max(1.0, tkl),
             qPrintable(QString("teacher KL %1 vs loss matrix %2").arg(e->teacherKl).arg(tkl)));
    QVERIFY(std::abs(e->studentTeacherKl - tskl) <= 1e-9 * std::max(1.0, tskl));
    QVERIFY(e->klMean > 0.0);
    QVERIFY(e->attention.sparsity() > 0.0);  // τ = 0.01 drops entries
    QVERIFY(e->size.bitsPerWeight() < 32.0);
  }

  // A sweep's point is exactly what one run of the same plan gives.
  void sweepPointsEqualSingleRuns() {
    auto student = demo("bert-demo-student");
    auto ref = makeReference(*student, nullptr, kSentences, {});
    QVERIFY(ref.ok());
    QCOMPARE(ref->teacherSentences(), 0);
    const std::vector<SweepAxis> axes = {{SweepParam::Bits, {2, 4, 8}}, {SweepParam::Tau, {0.001, 0.05}}};
    int seen = 0;
    auto points = sweep(*student, plan4bit(), axes, *ref, nullptr, nullptr,
                        [&](const SweepPoint&, int index, int total) {
                          QCOMPARE(index, seen++);
                          QCOMPARE(total, 6);
                        });
    QVERIFY2(points.ok(), points.ok() ? "" : points.message().c_str());
    QCOMPARE(int(points->size()), 6);
    QCOMPARE((*points)[1].values, (std::vector<double>{2, 0.05}));  // first axis outermost
    for (const SweepPoint& pt : *points) {
      auto plan = withParam(plan4bit(), SweepParam::Bits, pt.values[0]);
      plan = withParam(*plan, SweepParam::Tau, pt.values[1]);
      auto applied = applyPlan(*student, *plan);
      QVERIFY(applied.ok());
      auto one = evaluatePlan(*student, *applied, *plan, *ref);
      QVERIFY(one.ok());
      QCOMPARE(pt.eval.klMean, one->klMean);
      QCOMPARE(pt.eval.hiddenCosine, one->hiddenCosine);
      QCOMPARE(pt.eval.headJs, one->headJs);
      QCOMPARE(pt.eval.size.after, one->size.after);
      QVERIFY(std::isnan(pt.eval.teacherKl));
    }
    // More bits: a larger model; the wider attention threshold drops more.
    QVERIFY((*points)[0].eval.size.after < (*points)[4].eval.size.after);
    QVERIFY((*points)[4].eval.attention.sparsity() < (*points)[5].eval.attention.sparsity());
    // 8 bits with the small τ is closer to float than 2 bits with the same τ.
    QVERIFY((*points)[4].eval.klMean < (*points)[0].eval.klMean);
  }

  void sweepCancelsAndRejectsBadAxes() {
    auto student = demo("bert-demo-student");
    auto ref = makeReference(*student, nullptr, {"one sentence"}, {});
    QVERIFY(ref.ok());
    CancelToken cancel;
    int done = 0;
    auto r = sweep(*student, {}, {{SweepParam::Bits, {2, 4, 8}}}, *ref, nullptr, &cancel,
                   [&](const SweepPoint&, int, int) {
                     if (++done == 1) cancel.cancel();
                   });
    QVERIFY(!r.ok());
    QCOMPARE(QString::fromStdString(r.message()), QString("cancelled"));
    QCOMPARE(done, 1);
    QVERIFY(!sweep(*student, {}, {}, *ref).ok());
    QVERIFY(!sweep(*student, {}, {{SweepParam::Tau, {0.1}}, {SweepParam::Tau, {0.2}}}, *ref).ok());
    auto bad = sweep(*student, {}, {{SweepParam::Bits, {12}}}, *ref);
    QVERIFY(!bad.ok());
    QVERIFY2(QString::fromStdString(bad.message()).contains("bits"), bad.message().c_str());
    QVERIFY(!makeReference(*student, nullptr, {"", "  \n"}, {}).ok());  // blank lines only
    QCOMPARE(int(makeReference(*student, nullptr, {"a", "", "b"}, {})->ids.size()), 2);
  }
};

QTEST_APPLESS_MAIN(TestEvaluate)
#include "test_evaluate.moc"
