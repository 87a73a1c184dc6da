// The compression plan: JSON round trip, errors that name the key, and applying a
// plan (prune, then quantize) equals doing the two steps by hand.
#include <QTest>

#include "core/compress/plan.h"
#include "core/model/hf_writer.h"
#include "core/model/model.h"
#include "test_helpers.h"

using namespace attn;
using namespace attn::compress;

namespace {
CompressionPlan samplePlan() {
  CompressionPlan p;
  p.student = "models/bert_tiny";
  if (!quant::applyPlanText("q,k,v,o=uniform:8:channel; ffn_in,ffn_out=uniform:4:group:16:asym; "
                            "layer 1 q=kmeans:3",
                            p.quant))
    qFatal("plan text");
  p.quant.attention.kind = quant::AttentionQuant::Kind::Log2;
  p.quant.attention.bits = 4;
  sparse::PruneSpec nm;
  nm.method = sparse::PruneMethod::NM;
  p.prune.targets[int(Target::FfnIn)] = nm;
  sparse::PruneSpec mag;
  mag.sparsity = 0.3;
  p.prune.targets[int(Target::O)] = mag;
  p.prune.heads = {{0, 1}, {1, 3}};
  p.prune.attention.all.kind = sparse::AttentionRule::Kind::Threshold;
  p.prune.attention.all.tau = 0.02;
  p.prune.attention.all.renormalize = true;
  sparse::AttentionRule top;
  top.kind = sparse::AttentionRule::Kind::TopK;
  top.k = 3;
  p.prune.attention.overrides.push_back({1, -1, top});
  return p;
}
}  // namespace

class TestCompress : public QObject {
  Q_OBJECT

 private slots:
  void jsonRoundTrip() {
    const CompressionPlan p = samplePlan();
    const std::string text = planJson(p);
    auto back = parsePlanJson(text, "plan.json");
    QVERIFY2(back.ok(), back.ok() ? "" : back.message().c_str());
    QCOMPARE(planJson(*back), text);  // every field survives
    QCOMPARE(back->student, p.student);
    QCOMPARE(quant::planText(back->quant), quant::planText(p.quant));
    QVERIFY(back->quant.attention.kind == quant::AttentionQuant::Kind::Log2);
    QCOMPARE(back->quant.attention.bits, 4);
    QVERIFY(back->prune.targets[int(Target::FfnIn)]->method == sparse::PruneMethod::NM);
    QCOMPARE(back->prune.targets[int(Target::O)]->sparsity, 0.3);
    QVERIFY(!back->prune.targets[int(Target::Q)]);
    QCOMPARE(back->prune.heads, (std::vector<std::pair<int, int>>{{0, 1}, {1, 3}}));
    QCOMPARE(back->prune.attention.all.tau, 0.02);
    QVERIFY(back->prune.attention.all.renormalize);
    QCOMPARE(back->prune.attention.overrides.size(), size_t(1));
    QCOMPARE(back->prune.attention.overrides[0].rule.k, 3);
    QVERIFY(CompressionPlan{}.empty());
    QVERIFY(!p.empty());
    // Saved atomically and read back.
    test::TempDir tmp;
    QVERIFY(savePlan(tmp / "p.json", p).ok());
    auto loaded = loadPlan(tmp / "p.json");
    QVERIFY(loaded.ok());
    QCOMPARE(planJson(*loaded), text);
  }

  void badPlansNameTheKey_data() {
    QTest::addColumn<QString>("json");
    QTest::addColumn<QString>("message");
    QTest::newRow("not json") << "{" << "not valid JSON";
    QTest::newRow("format") << R"({"format": "x"})" << "not a compression plan";
    QTest::newRow("version") << R"({"format": "attnstudio-compression-plan", "version": 2})"
                             << "version must be 1";
    QTest::newRow("weights") << R"({"format": "attnstudio-compression-plan", "version": 1,
        "quantization": {"weights": "q=fp8:8"}})" << "quantization.weights";
    QTest::newRow("attention method") << R"({"format": "attnstudio-compression-plan", "version": 1,
        "quantization": {"attention": {"method": "fp8"}}})" << "quantization.attention.method";
    QTest::newRow("target") << R"({"format": "attnstudio-compression-plan", "version": 1,
        "pruning": {"targets": {"mlp": {"method": "magnitude"}}}})" << "pruning.targets.mlp";
    QTest::newRow("sparsity") << R"({"format": "attnstudio-compression-plan", "version": 1,
        "pruning": {"targets": {"q": {"method": "magnitude", "sparsity": 1.5}}}})"
                              << "pruning.targets.q.sparsity";
    QTest::newRow("heads") << R"({"format": "attnstudio-compression-plan", "version": 1,
        "pruning": {"heads": [[0]]}})" << "pruning.heads";
    QTest::newRow("rule") << R"({"format": "attnstudio-compression-plan", "version": 1,
        "attention_sparsity": {"rule": {"kind": "random"}}})" << "attention_sparsity.rule.kind";
    QTest::newRow("tau") << R"({"format": "attnstudio-compression-plan", "version": 1,
        "attention_sparsity": {"rule": {"kind": "threshold", "tau": 2}}})"
                         << "attention_sparsity.rule";
    QTest::newRow("type") << R"({"format": "attnstudio-compression-plan", "version": 1,
        "attention_sparsity": {"rule": {"kind": "topk", "k": "three"}}})" << "wrong type";
  }
  void badPlansNameTheKey() {
    QFETCH(QString, json);
    QFETCH(QString, message);
    auto r = parsePlanJson(json.toStdString(), "p.json");
    QVERIFY(!r.ok());
    QVERIFY2(QString::fromStdString(r.message()).contains(message), r.message().c_str());
    QVERIFY(QString::fromStdString(r.message()).startsWith("p.json"));
  }

  void applyEqualsPruneThenQuantize() {
    auto m = loadModel(test::dataDir() / "models" / "bert_tiny");
    QVERIFY(m.ok());
    CompressionPlan p = samplePlan();
    p.quant = {};
    QVERIFY(quant::applyPlanText("all=uniform:4:channel", p.quant).ok());
    auto applied = applyPlan(**m, p);
    QVERIFY2(applied.ok(), applied.ok() ? "" : applied.message().c_str());
    auto pruned = sparse::pruneModel(**m, p.prune);
    QVERIFY(pruned.ok());
    auto quantized = quant::quantizeModel(*pruned->model, p.quant);
    QVERIFY(quantized.ok());
    const auto a = namedWeights((*m)->config, applied->model->weights);
    const auto b = namedWeights((*m)->config, quantized->model->weights);
    QCOMPARE(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i)
      QVERIFY2(std::equal(a[i].second->f32(), a[i].second->f32() + a[i].second->numel(),
                          b[i].second->f32()),
               a[i].first.c_str());
    QCOMPARE(applied->pruned.size(), pruned->tensors.size());
    QVERIFY(applied->bytesAfter < applied->bytesBefore);
    // A removed head's Q rows stay zero after quantization (symmetric grid).
    const int Dh = (*m)->config.headDim();
    const Tensor& q0 = applied->model->weights.layers[0].q.w;
    for (int r = Dh; r < 2 * Dh; ++r)
      for (int c = 0; c < (*m)->config.hidden; ++c) QCOMPARE(q0.f32()[r * (*m)->config.hidden + c], 0.0f);
  }
};

QTEST_GUILESS_MAIN(TestCompress)
#include "test_compress.moc"
