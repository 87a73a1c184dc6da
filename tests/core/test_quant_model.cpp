// Quantizing whole models: the quantized forward pass against a PyTorch
// reference (weights quantized by torch.quantize_per_channel, float64 forward
// of make_fixtures.py, written by tests/tools/make_quant_fixtures.py), reports
// and overrides, attention-probability quantization, fidelity and the
// sensitivity scan.
#include <QTest>
#include <algorithm>
#include <cmath>

#include "core/attention/compare.h"
#include "core/io/npy.h"
#include "core/model/model.h"
#include "core/model/targets.h"
#include "core/quant/model_quant.h"
#include "tests/core/test_helpers.h"

using namespace attn;
using namespace attn::quant;

namespace {
// Same bounds as test_forward: 2.5× PyTorch's own float32 deviation on these fixtures.
constexpr double kAttentionTol = 1.5e-5;
constexpr double kHiddenTol = 1.5e-5;
constexpr double kQuantizationVisible = 1e-3;  // int8 changes these sharp maps by more

std::shared_ptr<const Model> fixture(const std::string& name) {
  auto m = loadModel(test::dataDir() / "models" / name);
  if (!m) qFatal("%s", m.message().c_str());
  return *m;
}

std::vector<int32_t> plainIds(const std::string& name) {
  auto a = readNpy(test::dataDir() / "models" / name / "reference" / "plain_ids.npy");
  if (!a) qFatal("%s", a.message().c_str());
  return std::vector<int32_t>(a->values.begin(), a->values.end());
}

ModelQuantPlan int8Plan(const std::string& targets) {
  ModelQuantPlan p;
  Spec s;
  s.bits = 8;
  s.granularity = Granularity::Channel;
  const auto list = parseTargets(targets);
  if (!list) qFatal("%s", list.message().c_str());
  for (Target t : *list) p.targets[size_t(t)] = s;
  return p;
}
}  // namespace

class TestQuantModel : public QObject {
  Q_OBJECT

 private slots:
  void matchesPyTorchQuantizedForward_data() {
    QTest::addColumn<QString>("model");
    QTest::addColumn<QString>("targets");
    QTest::newRow("bert_tiny, all") << "bert_tiny"
                                    << "all";
    QTest::newRow("gpt2_tiny, linear layers") << "gpt2_tiny"
                                              << "q,k,v,o,ffn_in,ffn_out";
  }

  void matchesPyTorchQuantizedForward() {
    QFETCH(QString, model);
    QFETCH(QString, targets);
    const std::string name = model.toStdString();
    const auto base = fixture(name);
    auto q = quantizeModel(*base, int8Plan(targets.toStdString()));
    QVERIFY2(q.ok(), q.ok() ? "" : q.message().c_str());
    ForwardOptions fo;
    fo.captureHidden = true;
    const auto ids = plainIds(name);
    auto r = forward(q->model->config, q->model->weights, ids, {}, fo);
    QVERIFY(r.ok());
    const auto att = readNpy(test::dataDir() / "quant" / (name + "_int8_attentions.npy"));
    const auto hid = readNpy(test::dataDir() / "quant" / (name + "_int8_hidden.npy"));
    QVERIFY(att.ok() && hid.ok());
    QCOMPARE(att->values.size(), r->attention.size());
    ATTN_CHECK_CLOSE(r->attention.data(), att->values.data(), r->attention.size(), kAttentionTol,
                     "quantized attention");
    ATTN_CHECK_CLOSE(r->hiddenStates.data(), hid->values.data(), r->hiddenStates.size(), kHiddenTol,
                     "quantized hidden states");
    // And quantization did change the maps: the float model is far from the reference.
    auto f = forward(base->config, base->weights, ids, {}, fo);
    QVERIFY(f.ok());
    QVERIFY(test::maxAbsDiff(f->attention.data(), att->values.data(), f->attention.size()).value >
            kQuantizationVisible);
  }

  void reportsNamesAndSizes() {
    const auto base = fixture("bert_tiny");
    quant::QuantizeModelOptions o;
    o.keepCodes = true;
    o.histogramBins = 16;
    auto q = quantizeModel(*base, int8Plan("all"), o);
    QVERIFY(q.ok());
    const int L = base->config.layers;
    QCOMPARE(int(q->tensors.size()), 6 * L + 3);  // + word, position, token-type embeddings
    QCOMPARE(q->codes.size(), q->tensors.size());
    QCOMPARE(q->tensors.front().name, std::string("embeddings.word_embeddings.weight"));
    QCOMPARE(q->tensors[3].name, std::string("encoder.layer.0.attention.self.query.weight"));
    int64_t saved = 0;
    for (const TensorReport& t : q->tensors) {
      QVERIFY2(t.stats.sqnrDb > 35, t.name.c_str());  // int8: ~6 dB per bit
      QCOMPARE(t.stats.weights.counts.size(), size_t(16));
      saved += t.stats.bytesBefore - t.stats.bytesAfter;
    }
    QVERIFY(q->bytesAfter < q->bytesBefore);
    QCOMPARE(q->bytesBefore - q->bytesAfter, saved);
    // The unquantized original is untouched.
    const auto again = quantizeModel(*base, ModelQuantPlan{});
    QVERIFY(again.ok() && again->tensors.empty());
    QCOMPARE(again->model->weights.layers[0].q.w.f32(), base->weights.layers[0].q.w.f32());
  }

  void gpt2FusedQkvIsSplit() {
    const auto base = fixture("gpt2_tiny");
    ModelQuantPlan p;
    Spec s;
    s.bits = 4;
    p.targets[size_t(Target::K)] = s;
    auto q = quantizeModel(*base, p);
    QVERIFY(q.ok());
    QCOMPARE(int(q->tensors.size()), base->config.layers);
    QCOMPARE(q->tensors[0].name, std::string("h.0.attn.c_attn[k].weight"));
    // Only the K third of c_attn changed: Conv1D [D, 3D], columns D … 2D − 1.
    const int D = base->config.hidden;
    const float* a = base->weights.layers[0].qkv.w.f32();
    const float* b = q->model->weights.layers[0].qkv.w.f32();
    int changedOutsideK = 0, changedInK = 0;
    for (int i = 0; i < D; ++i)
      for (int o = 0; o < 3 * D; ++o) {
        const bool diff = a[size_t(i) * 3 * D + o] != b[size_t(i) * 3 * D + o];
        (o >= D && o < 2 * D ? changedInK : changedOutsideK) += diff;
      }
    QCOMPARE(changedOutsideK, 0);
    QVERIFY(changedInK > D * D / 2);
  }

  // The walker without values (re-quantizing supplies them from elsewhere): each
  // matrix arrives empty, what the edit supplies is stored — for GPT-2 into its
  // third of c_attn only — and an edit that leaves the wrong count is an error.
  void editWithoutValuesStoresWhatTheEditSupplies() {
    const auto base = fixture("gpt2_tiny");
    auto m = derivedModel(*base);
    int calls = 0;
    QVERIFY(editWeightMatrices(
                m->config, m->weights,
                [](int layer, Target t) { return layer == 0 && (t == Target::K || t == Target::FfnIn); },
                [&](const WeightMatrix& wm, std::vector<float>& v) -> Status {
                  ++calls;
                  if (!v.empty()) return makeError("values were copied");
                  v.assign(size_t(wm.rows * wm.cols), 0.5f);
                  return Ok{};
                },
                /*store=*/true, /*values=*/false)
                .ok());
    QCOMPARE(calls, 2);
    const int D = base->config.hidden;
    const float* a = base->weights.layers[0].qkv.w.f32();
    const float* b = m->weights.layers[0].qkv.w.f32();
    for (int i = 0; i < D; ++i)
      for (int o = 0; o < 3 * D; ++o)
        QCOMPARE(b[size_t(i) * 3 * D + o], o >= D && o < 2 * D ? 0.5f : a[size_t(i) * 3 * D + o]);
    const Tensor& ffn = m->weights.layers[0].ffnIn.w;
    QVERIFY(std::all_of(ffn.f32(), ffn.f32() + ffn.numel(), [](float x) { return x == 0.5f; }));
    QVERIFY(base->weights.layers[0].ffnIn.w.f32()[0] != 0.5f);  // the base is untouched
    const Status bad = editWeightMatrices(
        m->config, m->weights, [](int layer, Target t) { return layer == 1 && t == Target::O; },
        [](const WeightMatrix&, std::vector<float>& v) -> Status {
          v.assign(3, 0.0f);
          return Ok{};
        },
        true, false);
    QVERIFY(!bad.ok());
    QVERIFY2(bad.message().find("h.1.attn.c_proj.weight: an edit left 3 values") != std::string::npos,
             bad.message().c_str());
  }

  // Borrowing: a matrix stored as float32 [out, in] (BERT) is read where it is,
  // not copied, and the edit may hand back a whole tensor; a transposed Conv1D or
  // a fused third (GPT-2) arrives copied as before; a replacement of the wrong
  // shape is an error that names the matrix.
  void editBorrowedReadsInPlaceAndTakesATensor() {
    const auto bert = fixture("bert_tiny");
    auto m = derivedModel(*bert);
    int lent = 0;
    QVERIFY(editWeightMatrices(
                m->config, m->weights, [](int layer, Target t) { return layer == 0 && t == Target::FfnIn; },
                [&](const WeightMatrix& wm, std::vector<float>& v) -> Status {
                  if (!v.empty() || wm.replacement == nullptr) return makeError("not lent");
                  if (wm.stored != bert->weights.layers[0].ffnIn.w.f32()) return makeError("not the base's values");
                  ++lent;
                  Tensor t = Tensor::uninitializedF32({wm.rows, wm.cols});
                  std::transform(wm.stored, wm.stored + wm.rows * wm.cols, t.mutableF32(),
                                 [](float x) { return 2.0f * x; });
                  *wm.replacement = std::move(t);
                  return Ok{};
                },
                /*store=*/true, /*values=*/true, /*borrow=*/true)
                .ok());
    QCOMPARE(lent, 1);
    const Tensor &was = bert->weights.layers[0].ffnIn.w, &now = m->weights.layers[0].ffnIn.w;
    QCOMPARE(now.shape(), was.shape());
    for (int64_t i = 0; i < was.numel(); ++i) QCOMPARE(now.f32()[i], 2.0f * was.f32()[i]);
    const auto gpt2 = fixture("gpt2_tiny");
    auto g = derivedModel(*gpt2);
    int copied = 0;
    QVERIFY(editWeightMatrices(
                g->config, g->weights, [](int layer, Target t) { return layer == 0 && (t == Target::K || t == Target::FfnIn); },
                [&](const WeightMatrix& wm, std::vector<float>& v) -> Status {
                  if (wm.stored != nullptr || wm.replacement != nullptr) return makeError("lent");
                  copied += int64_t(v.size()) == wm.rows * wm.cols;
                  return Ok{};
                },
                true, true, true)
                .ok());
    QCOMPARE(copied, 2);
    const Status bad = editWeightMatrices(
        m->config, m->weights, [](int layer, Target t) { return layer == 1 && t == Target::O; },
        [](const WeightMatrix& wm, std::vector<float>&) -> Status {
          *wm.replacement = Tensor::zerosF32({wm.cols, wm.rows + 1});
          return Ok{};
        },
        true, true, true);
    QVERIFY(!bad.ok());
    QVERIFY2(bad.message().find("encoder.layer.1.attention.output.dense.weight: an edit left a [") !=
                 std::string::npos,
             bad.message().c_str());
  }

  void overridesPerLayer() {
    const auto base = fixture("bert_tiny");
    ModelQuantPlan p = int8Plan("q,k,v,o,ffn_in,ffn_out");
    Spec two;
    two.bits = 2;
    p.overrides.push_back({0, Target::Q, two});
    p.overrides.push_back({1, Target::FfnIn, std::nullopt});
    auto q = quantizeModel(*base, p);
    QVERIFY(q.ok());
    QCOMPARE(int(q->tensors.size()), 11);
    for (const TensorReport& t : q->tensors) {
      QVERIFY(!(t.layer == 1 && t.target == Target::FfnIn));
      QCOMPARE(t.spec.bits, t.layer == 0 && t.target == Target::Q ? 2 : 8);
    }
    QCOMPARE(q->model->weights.layers[1].ffnIn.w.f32(), base->weights.layers[1].ffnIn.w.f32());
  }

  void attentionProbabilitiesByHand() {
    std::vector<float> p = {0.0f, 0.16f, 0.17f, 0.5f, 1.0f};
    quantizeProbabilities(p.data(), 5, {AttentionQuant::Kind::Uniform, 2, 0});
    // s = 1/3: p·3 = 0, .48, .51, 1.5, 3 → 0, 0, 1, 2 (half to even), 3.
    const float s = 1.0f / 3.0f;
    QCOMPARE(p, (std::vector<float>{0.0f, 0.0f, s * 1, s * 2, s * 3}));
    p = {1.0f, 0.5f, 0.3f, 0.1f, 0.0f};
    quantizeProbabilities(p.data(), 5, {AttentionQuant::Kind::Log2, 2, 0});
    QCOMPARE(p, (std::vector<float>{1.0f, 0.5f, 0.25f, 0.0f, 0.0f}));  // k ≤ 2^2 − 2
    p = {0.29f, 0.3f, 0.9f};
    quantizeProbabilities(p.data(), 3, {AttentionQuant::Kind::Binary, 1, 0.3f});
    QCOMPARE(p, (std::vector<float>{0.0f, 1.0f, 1.0f}));
    QVERIFY(!validate(AttentionQuant{AttentionQuant::Kind::Uniform, 9, 0}).ok());
    QVERIFY(!validate(AttentionQuant{AttentionQuant::Kind::Binary, 1, 0.0f}).ok());
  }

  void quantizedAttentionFeedsLaterLayers() {
    const auto base = fixture("bert_tiny");
    const auto ids = plainIds("bert_tiny");
    const AttentionQuant a{AttentionQuant::Kind::Uniform, 4, 0};
    auto q = forward(base->config, base->weights, ids, {}, withAttentionQuant({}, a));
    auto f = forward(base->config, base->weights, ids, {});
    QVERIFY(q.ok() && f.ok());
    for (float x : q->attention) {  // every stored probability is on the 4-bit grid
      const float k = x * 15.0f;
      QVERIFY(std::fabs(k - std::round(k)) < 1e-4f);
    }
    const Fidelity fid = fidelity(*f, *q);
    QVERIFY(fid.klMean > 0 && fid.hiddenCosine < 1.0);
    QVERIFY(fid.hiddenCosine > 0.9);
    const Fidelity self = fidelity(*f, *f);
    QVERIFY(std::fabs(self.klMean) < 1e-12 && std::fabs(self.hiddenCosine - 1.0) < 1e-12);
    QCOMPARE(int(self.kl.size()), base->config.layers * base->config.heads);
  }

  void sensitivityScan() {
    const auto base = fixture("bert_tiny");
    const auto ids = plainIds("bert_tiny");
    ModelQuantPlan p;
    Spec s;
    s.bits = 2;
    for (int t = 0; t < kTargetCount; ++t) p.targets[size_t(t)] = s;
    int calls = 0;
    auto byLayer =
        quant::sensitivityScan(*base, p, ids, SensitivityBy::Layer, {}, [&](int done, int total) {
          ++calls;
          QCOMPARE(total, base->config.layers);
          QVERIFY(done <= total);
        });
    QVERIFY(byLayer.ok());
    QCOMPARE(int(byLayer->size()), base->config.layers);
    QCOMPARE(calls, base->config.layers);
    for (size_t i = 1; i < byLayer->size(); ++i)
      QVERIFY((*byLayer)[i - 1].attentionKl >= (*byLayer)[i].attentionKl);  // ranked
    // Each entry equals quantizing that layer alone (bit for bit: the forward
    // pass is deterministic).
    auto f = forward(base->config, base->weights, ids, {});
    QVERIFY(f.ok());
    for (const Sensitivity& e : *byLayer) {
      ModelQuantPlan only;
      for (int t = 0; t < kTargetCount - 1; ++t) only.overrides.push_back({e.layer, Target(t), s});
      auto q = quantizeModel(*base, only);
      QVERIFY(q.ok());
      auto r = forward(q->model->config, q->model->weights, ids, {});
      QVERIFY(r.ok());
      const Fidelity fid = fidelity(*f, *r);
      QCOMPARE(e.attentionKl, fid.klMean);
      QCOMPARE(e.hiddenCosine, fid.hiddenCosine);
      QVERIFY(e.attentionKl > 0 && e.hiddenCosine < 1);
    }
    auto byTarget = quant::sensitivityScan(*base, p, ids, SensitivityBy::Target);
    QVERIFY(byTarget.ok());
    QCOMPARE(int(byTarget->size()), kTargetCount);
  }

  void planText() {
    ModelQuantPlan p;
    const Status st = applyPlanText(
        "all=uniform:8; ffn_in,ffn_out=uniform:4:group:64; layer 0 q,k=none; "
        "layers 1-2 v=kmeans:3:tensor; o=uniform:6:channel:asym",
        p);
    QVERIFY2(st.ok(), st.ok() ? "" : st.message().c_str());
    QCOMPARE(p.specFor(5, Target::Emb)->bits, 8);
    QCOMPARE(p.specFor(3, Target::FfnIn)->bits, 4);
    QCOMPARE(p.specFor(3, Target::FfnOut)->groupSize, 64);
    QCOMPARE(int(p.specFor(3, Target::FfnOut)->granularity), int(Granularity::Group));
    QVERIFY(!p.specFor(0, Target::Q) && !p.specFor(0, Target::K));
    QCOMPARE(p.specFor(1, Target::Q)->bits, 8);
    QCOMPARE(int(p.specFor(2, Target::V)->method), int(Method::KMeans));
    QCOMPARE(int(p.specFor(0, Target::V)->method), int(Method::Uniform));
    QVERIFY(!p.specFor(3, Target::O)->symmetric);
    // The text of a plan reads back as the same plan.
    ModelQuantPlan back;
    QVERIFY(applyPlanText(quant::planText(p), back).ok());
    for (int l = -1; l < 4; ++l)
      for (int t = 0; t < kTargetCount; ++t)
        QCOMPARE(QString::fromStdString(specText(back.specFor(l, Target(t)))),
                 QString::fromStdString(specText(p.specFor(l, Target(t)))));
    // A later entry for every layer replaces earlier per-layer ones.
    QVERIFY(applyPlanText("q=uniform:2", p).ok());
    QCOMPARE(p.specFor(0, Target::Q)->bits, 2);
    // Errors name the problem and leave the plan as it was.
    const ModelQuantPlan before = p;
    for (const auto& [text, message] : std::vector<std::pair<std::string, QString>>{
             {"q=uniform", "expected method:bits"},
             {"mlp=uniform:4", "unknown target 'mlp'"},
             {"layer x q=uniform:4", "layer 'x' is not a non-negative integer"},
             {"q=uniform:9", "takes 2–8 bits, not 9"},
             {"layers 3-1 q=none", "the range is empty"},
             {"q=uniform:4:group:0", "is not a positive integer"},
             {"q uniform:4", "expected targets=spec"},
             {"all=uniform:8; q=log2:4:group:32", "per tensor or per channel"}}) {
      ModelQuantPlan x = p;
      const Status e = applyPlanText(text, x);
      QVERIFY2(!e.ok(), text.c_str());
      QVERIFY2(QString::fromStdString(e.message()).contains(message), e.message().c_str());
      QCOMPARE(x.specFor(0, Target::Q)->bits, before.specFor(0, Target::Q)->bits);
      QCOMPARE(x.overrides.size(), before.overrides.size());
    }
  }

  void badPlansAreErrors() {
    QVERIFY(!parseTargets("q,foo").ok());
    QVERIFY(
        QString::fromStdString(parseTargets("q,foo").message()).contains("unknown target 'foo'"));
    QVERIFY(!parseTargets("").ok());
    const auto base = fixture("bert_tiny");
    ModelQuantPlan p;
    Spec s;
    s.granularity = Granularity::Group;
    s.groupSize = 7;  // does not divide the hidden size
    p.targets[size_t(Target::Q)] = s;
    auto q = quantizeModel(*base, p);
    QVERIFY(!q.ok());
    QVERIFY2(
        QString::fromStdString(q.message()).contains("encoder.layer.0.attention.self.query.weight"),
        q.message().c_str());
    p = ModelQuantPlan{};
    p.attention = {AttentionQuant::Kind::Log2, 0, 0};
    QVERIFY(!quantizeModel(*base, p).ok());
  }
};

QTEST_GUILESS_MAIN(TestQuantModel)
#include "test_quant_model.moc"
