// Distillation engine: every backward step against central finite differences,
// the losses on hand-worked cases, the network's forward against the engine's
// forward, mappings, the trainer (determinism, loss reduction, checkpoints,
// resume, cancel) and Group-Lasso / QAT.
#include <QTemporaryDir>
#include <QTest>
#include <thread>
#include <filesystem>
#include <numeric>
#include <random>

#include "core/distill/losses.h"
#include "core/distill/mapping.h"
#include "core/distill/network.h"
#include "core/distill/ops.h"
#include "core/distill/init.h"
#include "core/distill/trainer.h"
#include "core/io/safetensors.h"
#include "core/model/hf_writer.h"
#include "core/model/model.h"
#include "core/model/transformer.h"
#include "test_helpers.h"

using namespace attn;
using namespace attn::distill;

namespace {

// Finite differences on float32 parameters: a central difference with step h
// has truncation error O(h²) and rounding error ~ε_f32·|f| / h; with h = 1e-2 on
// O(1) values both stay near 1e-4 relative.
constexpr double kFdStep = 1e-2;
constexpr double kFdRelTol = 2e-2;  // |analytic − numeric| ≤ tol·(|a| + |n|) + floor
constexpr double kFdAbsFloor = 2e-4;

Mat randomMat(int rows, int cols, std::mt19937& rng, float scale = 1.0f) {
  std::normal_distribution<float> d(0.0f, scale);
  Mat m(rows, cols);
  for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = d(rng);
  return m;
}

// Checks d f / d x[i] for the given indices of x (perturbed in place).
template <class F>
void checkGradient(const char* what, float* x, const float* analytic, const std::vector<size_t>& idx,
                   F&& f, double floor = kFdAbsFloor) {
  int bad = 0;
  QString first;
  for (size_t i : idx) {
    const float keep = x[i];
    x[i] = keep + static_cast<float>(kFdStep);
    const double up = f();
    x[i] = keep - static_cast<float>(kFdStep);
    const double down = f();
    x[i] = keep;
    const double numeric = (up - down) / (2.0 * kFdStep);
    const double a = analytic[i];
    if (std::abs(a - numeric) > kFdRelTol * (std::abs(a) + std::abs(numeric)) + floor) {
      if (bad++ == 0)
        first = QString("%1[%2]: analytic %3, numeric %4").arg(what).arg(i).arg(a).arg(numeric);
    }
  }
  if (bad > 0) QFAIL(qPrintable(QString("%1 of %2 entries differ; first %3").arg(bad).arg(idx.size()).arg(first)));
}

std::vector<size_t> sample(size_t n, int count, std::mt19937& rng) {
  std::vector<size_t> out;
  if (n <= static_cast<size_t>(count)) {
    for (size_t i = 0; i < n; ++i) out.push_back(i);
    return out;
  }
  std::uniform_int_distribution<size_t> d(0, n - 1);
  for (int i = 0; i < count; ++i) out.push_back(d(rng));
  return out;
}

double dot(const Mat& a, const Mat& b) { return static_cast<double>((a.array() * b.array()).sum()); }

ModelConfig tinyConfig(Architecture arch, int layers, int heads, int hidden) {
  ModelConfig c;
  c.arch = arch;
  c.layers = layers;
  c.heads = heads;
  c.hidden = hidden;
  c.intermediate = 2 * hidden;
  c.vocabSize = 23;
  c.maxPositions = 12;
  c.typeVocabSize = arch == Architecture::Gpt2 ? 0 : 2;
  c.padTokenId = arch == Architecture::Gpt2 ? -1 : 0;
  c.layerNormEps = 1e-5f;
  c.activation = arch == Architecture::Gpt2 ? Activation::GeluTanh : Activation::GeluErf;
  return c;
}

// A batch of 3 examples of 7 tokens, the last two padded.
struct TinyBatch {
  int n = 3, seq = 7;
  std::vector<int32_t> ids, mask;
};
TinyBatch tinyBatch(int vocab, std::mt19937& rng) {
  TinyBatch b;
  std::uniform_int_distribution<int> d(1, vocab - 1);
  const int lengths[] = {7, 5, 3};
  for (int e = 0; e < b.n; ++e)
    for (int i = 0; i < b.seq; ++i) {
      b.ids.push_back(i < lengths[e] ? d(rng) : 0);
      b.mask.push_back(i < lengths[e] ? 1 : 0);
    }
  return b;
}

// Scales the random init up so the maps are far from uniform and gradients are O(1).
void sharpen(Network& net, float factor) {
  for (const Segment& s : net.layout.segments)
    if (s.decay)
      for (size_t i = 0; i < s.size; ++i) net.params[s.offset + i] *= factor;
}

// A student directory next to the bert_tiny teacher (same vocabulary): 2 layers,
// 4 heads, hidden 16, random weights.
std::filesystem::path makeStudent(const std::filesystem::path& dir, uint64_t seed = 5) {
  const std::string config = R"({"architectures": ["BertModel"], "model_type": "bert",
    "hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 4,
    "intermediate_size": 32, "max_position_embeddings": 64, "vocab_size": 110,
    "type_vocab_size": 2, "pad_token_id": 0, "layer_norm_eps": 1e-12, "hidden_act": "gelu"})";
  const Status st = writeInitialModel(dir, config, test::dataDir() / "models" / "bert_tiny", seed);
  if (!st) qFatal("%s", st.message().c_str());
  return dir;
}

// A teacher with sharp maps the student can learn: a 3-layer BERT as wide as the
// student (hidden 16, 4 heads) whose random weights are scaled up ×12, so that its
// heads attend to a few positions and tokens (per-row KL to a fresh student ≈ 0.3).
std::shared_ptr<const Model> loadModelOrDie(const std::filesystem::path& p) {
  auto m = loadModel(p);
  if (!m) qFatal("%s", m.message().c_str());
  return *m;
}
std::shared_ptr<const Model> makeTeacher(const std::filesystem::path& root) {
  const std::string config = R"({"architectures": ["BertModel"], "model_type": "bert",
    "hidden_size": 16, "num_hidden_layers": 3, "num_attention_heads": 4,
    "intermediate_size": 64, "max_position_embeddings": 64, "vocab_size": 110,
    "type_vocab_size": 2, "pad_token_id": 0, "layer_norm_eps": 1e-12, "hidden_act": "gelu"})";
  const Status st = writeInitialModel(root / "teacher-init", config,
                                      test::dataDir() / "models" / "bert_tiny", 77);
  if (!st) qFatal("%s", st.message().c_str());
  auto init = loadModelOrDie(root / "teacher-init");
  auto net = networkFromWeights(init->config, init->weights);
  sharpen(*net, 12.0f);
  if (Status w = writeHfModel(root / "teacher", *init, networkWeights(*net)); !w)
    qFatal("%s", w.message().c_str());
  return loadModelOrDie(root / "teacher");
}

TokenizedCorpus syntheticCorpus(int count, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> word(5, 109), len(4, 14);
  TokenizedCorpus c;
  for (int i = 0; i < count; ++i) {
    std::vector<int32_t> e = {2};  // [CLS]
    const int n = len(rng);
    for (int k = 0; k < n; ++k) e.push_back(word(rng));
    e.push_back(3);  // [SEP]
    c.examples.push_back(std::move(e));
  }
  return c;
}

std::shared_ptr<const Model> load(const std::filesystem::path& p) {
  auto m = loadModel(p);
  if (!m) qFatal("%s", m.message().c_str());
  return *m;
}

TrainOptions smallRun(int steps) {
  TrainOptions o;
  o.loss.mapping = {0, 1};  // uniform for 2 teacher layers; {1, 2} for 3
  o.loss.attention = AttentionLoss::Kl;
  o.steps = steps;
  o.batch = 8;
  o.seq = 16;
  o.lr = 1e-2;
  o.warmup = 2;
  o.seed = 42;
  o.threads = 2;
  return o;
}

}  // namespace

class TestDistill : public QObject {
  Q_OBJECT

 private slots:
  // ------------------------------------------------------------------ ops
  void linearGradients() {
    std::mt19937 rng(1);
    Mat x = randomMat(5, 4, rng), w = randomMat(3, 4, rng), r = randomMat(5, 3, rng);
    std::vector<float> b = {0.1f, -0.2f, 0.3f};
    auto f = [&] {
      Mat y;
      linearForward(w.data(), b.data(), 3, 4, x, y);
      return dot(y, r);
    };
    Mat dx;
    Mat dw = Mat::Zero(3, 4);
    std::vector<float> db(3, 0.0f);
    linearBackward(w.data(), 3, 4, x, r, &dx, dw.data(), db.data());
    checkGradient("x", x.data(), dx.data(), sample(x.size(), 20, rng), f);
    checkGradient("W", w.data(), dw.data(), sample(w.size(), 12, rng), f);
    checkGradient("b", b.data(), db.data(), {0, 1, 2}, f);
  }

  void layerNormGradients() {
    std::mt19937 rng(2);
    Mat x = randomMat(4, 6, rng, 2.0f), r = randomMat(4, 6, rng);
    Mat g = randomMat(1, 6, rng), be = randomMat(1, 6, rng);
    auto f = [&] {
      Mat y;
      NormCache c;
      layerNormForward(g.data(), be.data(), 1e-5f, x, y, c);
      return dot(y, r);
    };
    Mat y, dx;
    NormCache c;
    layerNormForward(g.data(), be.data(), 1e-5f, x, y, c);
    Mat dg = Mat::Zero(1, 6), db = Mat::Zero(1, 6);
    layerNormBackward(g.data(), c, r, dx, dg.data(), db.data());
    checkGradient("x", x.data(), dx.data(), sample(x.size(), 24, rng), f);
    checkGradient("gamma", g.data(), dg.data(), sample(6, 6, rng), f);
    checkGradient("beta", be.data(), db.data(), sample(6, 6, rng), f);
  }

  void activationGradients_data() {
    QTest::addColumn<int>("kind");
    QTest::newRow("gelu-erf") << int(Activation::GeluErf);
    QTest::newRow("gelu-tanh") << int(Activation::GeluTanh);
    QTest::newRow("relu") << int(Activation::Relu);
  }
  void activationGradients() {
    QFETCH(int, kind);
    const auto a = static_cast<Activation>(kind);
    std::mt19937 rng(3);
    Mat x = randomMat(3, 7, rng, 1.5f), r = randomMat(3, 7, rng);
    // Keep ReLU inputs away from the kink, where the derivative jumps.
    for (Eigen::Index i = 0; i < x.size(); ++i)
      if (std::abs(x.data()[i]) < 0.05f) x.data()[i] = 0.3f;
    auto f = [&] {
      Mat y;
      activationForward(a, x, y);
      return dot(y, r);
    };
    Mat dx;
    activationBackward(a, x, r, dx);
    std::vector<size_t> all(static_cast<size_t>(x.size()));
    std::iota(all.begin(), all.end(), 0);
    checkGradient("x", x.data(), dx.data(), all, f);
  }

  void attentionGradients_data() {
    QTest::addColumn<bool>("causal");
    QTest::newRow("bidirectional") << false;
    QTest::newRow("causal") << true;
  }
  void attentionGradients() {
    QFETCH(bool, causal);
    std::mt19937 rng(4);
    const AttentionShape s{2, 5, 2, 3, causal};
    const int N = s.n * s.seq, D = s.heads * s.headDim;
    Mat q = randomMat(N, D, rng), k = randomMat(N, D, rng), v = randomMat(N, D, rng);
    const Mat rc = randomMat(N, D, rng);
    std::vector<float> rp(static_cast<size_t>(s.n) * s.heads * s.seq * s.seq);
    for (float& x : rp) x = std::normal_distribution<float>(0.0f, 1.0f)(rng);
    const std::vector<int32_t> mask = {1, 1, 1, 1, 1, 1, 1, 1, 0, 0};  // 2nd example padded
    auto f = [&] {
      std::vector<float> p(rp.size());
      Mat ctx;
      attentionForward(s, q, k, v, mask.data(), p.data(), ctx);
      double l = dot(ctx, rc);
      for (size_t i = 0; i < p.size(); ++i) l += static_cast<double>(p[i]) * rp[i];
      return l;
    };
    std::vector<float> p(rp.size());
    Mat ctx, dq, dk, dv;
    attentionForward(s, q, k, v, mask.data(), p.data(), ctx);
    // Probabilities: rows sum to 1, masked keys get exactly 0.
    for (int b = 0; b < s.n; ++b)
      for (int h = 0; h < s.heads; ++h)
        for (int i = 0; i < s.seq; ++i) {
          double sum = 0;
          for (int j = 0; j < s.seq; ++j) {
            const float x = p[((size_t(b) * s.heads + h) * s.seq + i) * s.seq + j];
            if (mask[b * s.seq + j] == 0 || (causal && j > i)) QCOMPARE(x, 0.0f);
            sum += x;
          }
          QVERIFY(std::abs(sum - 1.0) < 1e-6);
        }
    attentionBackward(s, q, k, v, p.data(), rc, rp.data(), dq, dk, dv);
    checkGradient("q", q.data(), dq.data(), sample(q.size(), 30, rng), f);
    checkGradient("k", k.data(), dk.data(), sample(k.size(), 30, rng), f);
    checkGradient("v", v.data(), dv.data(), sample(v.size(), 30, rng), f);
  }

  // ------------------------------------------------------------------ losses by hand
  void identicalMapsHaveZeroLoss_data() {
    QTest::addColumn<int>("loss");
    QTest::addColumn<int>("heads");
    QTest::newRow("kl") << int(AttentionLoss::Kl) << int(HeadMode::Auto);
    QTest::newRow("mse") << int(AttentionLoss::Mse) << int(HeadMode::Auto);
    QTest::newRow("frobenius avg") << int(AttentionLoss::Frobenius) << int(HeadMode::Average);
    QTest::newRow("kl relation") << int(AttentionLoss::Kl) << int(HeadMode::Relation);
  }
  void identicalMapsHaveZeroLoss() {
    QFETCH(int, loss);
    QFETCH(int, heads);
    std::mt19937 rng(5);
    Network net = randomNetwork(tinyConfig(Architecture::Bert, 2, 2, 8), 7);
    sharpen(net, 20.0f);
    const TinyBatch b = tinyBatch(net.config.vocabSize, rng);
    Activations a;
    QVERIFY(networkForward(net, b.ids.data(), b.mask.data(), b.n, b.seq, a).ok());
    LossOptions o;
    o.mapping = {0, 1};
    o.attention = static_cast<AttentionLoss>(loss);
    o.heads = static_cast<HeadMode>(heads);
    o.valueWeight = 1.0;
    o.hiddenWeight = 1.0;
    LossValues v;
    ActivationGrads g;
    std::vector<float> gp(net.layout.size, 0.0f);
    accumulateLosses(o, normalizers(b.mask.data(), b.n, b.seq), net, a, &net, &a, {}, nullptr, v,
                     g, gp.data(), nullptr);
    QVERIFY2(std::abs(v.total) < 1e-9, qPrintable(QString::number(v.total)));
    QVERIFY(v.attention[0] == 0.0 || std::abs(v.attention[0]) < 1e-9);
  }

  // One example, one head, 2 tokens: A_T = [[1, 0], [0.5, 0.5]] (causal-like) vs
  // A_S = [[1, 0], [0.25, 0.75]] by hand:
  //   KL = mean over the 2 rows of (0 + 0.5 ln(0.5/0.25) + 0.5 ln(0.5/0.75))
  //   MSE = (0.25² + 0.25²) / 4 entries; Frobenius = 0.125.
  void handComputedTwoByTwo() {
    ModelConfig c = tinyConfig(Architecture::Gpt2, 1, 1, 4);
    Network net = randomNetwork(c, 1);
    Activations t, s;
    const std::vector<int32_t> ids = {1, 2}, mask = {1, 1};
    QVERIFY(networkForward(net, ids.data(), mask.data(), 1, 2, t).ok());
    s = t;
    const float at[] = {1.0f, 0.0f, 0.5f, 0.5f}, as[] = {1.0f, 0.0f, 0.25f, 0.75f};
    std::copy(at, at + 4, t.layers[0].p.begin());
    std::copy(as, as + 4, s.layers[0].p.begin());
    const double kl = 0.5 * (0.5 * std::log(2.0) + 0.5 * std::log(0.5 / 0.75));
    const std::pair<AttentionLoss, double> cases[] = {{AttentionLoss::Kl, kl},
                                                      {AttentionLoss::Mse, 0.125 / 4},
                                                      {AttentionLoss::Frobenius, 0.125}};
    for (const auto& [kind, expected] : cases) {
      LossOptions o;
      o.mapping = {0};
      o.attention = kind;
      LossValues v;
      ActivationGrads g;
      std::vector<float> gp(net.layout.size, 0.0f);
      accumulateLosses(o, normalizers(mask.data(), 1, 2), net, s, &net, &t, {}, nullptr, v, g,
                       gp.data(), nullptr);
      QVERIFY2(std::abs(v.attention[0] - expected) < 1e-7,
               qPrintable(QString("%1: %2 vs %3").arg(attentionLossName(kind)).arg(v.attention[0]).arg(expected)));
      QVERIFY(std::abs(v.total - expected) < 1e-7);
    }
  }

  // ------------------------------------------------------------------ end to end
  void networkMatchesEngineForward_data() {
    QTest::addColumn<QString>("model");
    QTest::newRow("bert") << "bert_tiny";
    QTest::newRow("gpt2") << "gpt2_tiny";
    QTest::newRow("distilbert") << "distilbert_tiny";
    QTest::newRow("roberta") << "roberta_tiny";
  }
  void networkMatchesEngineForward() {
    QFETCH(QString, model);
    auto m = loadModel(test::dataDir() / "models" / model.toStdString());
    QVERIFY2(m.ok(), m.ok() ? "" : m.message().c_str());
    const Model& md = **m;
    auto net = networkFromWeights(md.config, md.weights);
    QVERIFY(net.ok());
    // The round trip through the network layout gives the weights back exactly.
    const ModelWeights back = networkWeights(*net);
    const auto a = namedWeights(md.config, md.weights), b = namedWeights(md.config, back);
    QCOMPARE(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      QCOMPARE(a[i].first, b[i].first);
      QCOMPARE(a[i].second->shape(), b[i].second->shape());
      QVERIFY2(std::equal(a[i].second->f32(), a[i].second->f32() + a[i].second->numel(),
                          b[i].second->f32()),
               a[i].first.c_str());
    }
    std::vector<int32_t> ids;
    for (int i = 0; i < 9; ++i) ids.push_back(3 + (i * 7) % (md.config.vocabSize - 3));
    if (md.config.arch == Architecture::Roberta) ids.front() = 0;
    const std::vector<int32_t> mask(ids.size(), 1);
    auto ref = forward(md.config, md.weights, ids, mask);
    QVERIFY(ref.ok());
    Activations act;
    QVERIFY(networkForward(*net, ids.data(), mask.data(), 1, int(ids.size()), act).ok());
    // Attention and final hidden states agree to float rounding (a different
    // summation order in the products).
    constexpr double kForwardTol = 2e-5;
    for (int l = 0; l < md.config.layers; ++l)
      ATTN_CHECK_CLOSE(act.layers[l].p.data(), ref->attentionMap(l, 0),
                       size_t(md.config.heads) * ids.size() * ids.size(), kForwardTol, "attention");
    ATTN_CHECK_CLOSE(act.final.data(), ref->lastHidden.data(), ref->lastHidden.size(), 1e-4,
                     "last hidden");
  }

  void endToEndGradients_data() {
    QTest::addColumn<int>("arch");
    QTest::addColumn<int>("studentHeads");
    QTest::addColumn<int>("studentHidden");
    QTest::addColumn<int>("loss");
    QTest::addColumn<int>("heads");
    QTest::addColumn<double>("value");
    QTest::addColumn<double>("hidden");
    QTest::addColumn<double>("logit");
    QTest::addColumn<double>("lm");
    const int bert = int(Architecture::Bert), gpt2 = int(Architecture::Gpt2);
    const int kl = int(AttentionLoss::Kl), mse = int(AttentionLoss::Mse),
              fro = int(AttentionLoss::Frobenius);
    const int aut = int(HeadMode::Auto), avg = int(HeadMode::Average), rel = int(HeadMode::Relation);
    QTest::newRow("bert kl per head") << bert << 2 << 8 << kl << aut << 0.0 << 0.0 << 0.0 << 0.0;
    QTest::newRow("bert mse averaged") << bert << 1 << 8 << mse << avg << 0.0 << 0.0 << 0.0 << 0.0;
    QTest::newRow("bert frobenius") << bert << 2 << 8 << fro << aut << 0.0 << 0.0 << 0.0 << 0.0;
    QTest::newRow("bert relation + value") << bert << 2 << 4 << kl << rel << 1.0 << 0.0 << 0.0 << 0.0;
    QTest::newRow("bert hidden projected") << bert << 2 << 4 << int(AttentionLoss::None) << aut << 0.0 << 1.0 << 0.0 << 0.0;
    QTest::newRow("gpt2 kl + hidden") << gpt2 << 2 << 8 << kl << aut << 0.0 << 1.0 << 0.0 << 0.0;
    QTest::newRow("gpt2 logits") << gpt2 << 2 << 8 << int(AttentionLoss::None) << aut << 0.0 << 0.0 << 1.0 << 0.0;
    QTest::newRow("gpt2 lm") << gpt2 << 2 << 8 << int(AttentionLoss::None) << aut << 0.0 << 0.0 << 0.0 << 1.0;
    QTest::newRow("gpt2 all") << gpt2 << 1 << 4 << kl << rel << 0.5 << 0.5 << 0.5 << 0.5;
  }
  void endToEndGradients() {
    QFETCH(int, arch);
    QFETCH(int, studentHeads);
    QFETCH(int, studentHidden);
    QFETCH(int, loss);
    QFETCH(int, heads);
    QFETCH(double, value);
    QFETCH(double, hidden);
    QFETCH(double, logit);
    QFETCH(double, lm);
    const auto a = static_cast<Architecture>(arch);
    std::mt19937 rng(6);
    Network teacher = randomNetwork(tinyConfig(a, 3, 2, 8), 11);
    Network student = randomNetwork(tinyConfig(a, 2, studentHeads, studentHidden), 12);
    sharpen(teacher, 25.0f);
    sharpen(student, 25.0f);
    const TinyBatch b = tinyBatch(student.config.vocabSize, rng);
    LossOptions o;
    o.mapping = {1, 2};
    o.attention = static_cast<AttentionLoss>(loss);
    o.heads = static_cast<HeadMode>(heads);
    o.relationHeads = studentHeads == 1 ? 2 : 0;
    o.valueWeight = value;
    o.hiddenWeight = hidden;
    o.logitWeight = logit;
    o.temperature = 2.0;
    o.lmWeight = lm;
    QVERIFY(validateLoss(o, teacher.config, student.config).ok());
    const ProjectionSlots proj = projectionSlots(o, teacher.config, student.config);
    std::vector<float> extra(proj.size);
    initProjections(proj, extra.data(), 3);
    const Normalizers norm = normalizers(b.mask.data(), b.n, b.seq);
    Activations ta;
    QVERIFY(networkForward(teacher, b.ids.data(), b.mask.data(), b.n, b.seq, ta).ok());
    auto lossAt = [&](std::vector<float>* grad) {
      Activations sa;
      if (!networkForward(student, b.ids.data(), b.mask.data(), b.n, b.seq, sa).ok()) return NAN;
      LossValues v;
      ActivationGrads g;
      std::vector<float> scratch(student.layout.size + proj.size, 0.0f);
      float* gp = grad ? grad->data() : scratch.data();
      accumulateLosses(o, norm, student, sa, &teacher, &ta, proj, extra.data(), v, g, gp,
                       gp + student.layout.size);
      if (grad) networkBackward(student, sa, g, gp);
      return static_cast<float>(v.total);
    };
    std::vector<float> grad(student.layout.size + proj.size, 0.0f);
    const double l0 = lossAt(&grad);
    QVERIFY2(l0 > 0 && std::isfinite(l0), qPrintable(QString::number(l0)));
    auto f = [&] { return static_cast<double>(lossAt(nullptr)); };
    // Every parameter group: a few entries of each segment.
    std::vector<size_t> idx;
    for (const Segment& s : student.layout.segments) {
      std::uniform_int_distribution<size_t> d(0, s.size - 1);
      for (int i = 0; i < 2; ++i) idx.push_back(s.offset + d(rng));
    }
    checkGradient("params", student.params.data(), grad.data(), idx, f, 2e-3 * std::abs(l0) + 1e-4);
    if (proj.size > 0)
      checkGradient("projection", extra.data(), grad.data() + student.layout.size,
                    sample(proj.size, 12, rng), f, 2e-3 * std::abs(l0) + 1e-4);
  }

  // ------------------------------------------------------------------ mappings
  void mappings() {
    QCOMPARE(*parseMapping("uniform", 4, 2), (std::vector<int>{1, 3}));
    QCOMPARE(*parseMapping("last", 4, 2), (std::vector<int>{-1, 3}));
    QCOMPARE(*parseMapping("last:2", 4, 2), (std::vector<int>{2, 3}));
    QCOMPARE(*parseMapping("0:0,1:2", 4, 2), (std::vector<int>{0, 2}));
    QCOMPARE(*parseMapping("1:3", 4, 2), (std::vector<int>{-1, 3}));
    QCOMPARE(mappingText({1, 3}), std::string("0:1,1:3"));
    for (const char* bad : {"auto", "0:4", "2:0", "0:1,0:2", "x", "last:3", "0-1"}) {
      auto r = parseMapping(bad, 4, 2);
      QVERIFY2(!r.ok(), bad);
      QVERIFY(!r.message().empty());
    }
  }

  // ------------------------------------------------------------------ trainer
  void tokenizeCorpusTruncatesKeepingFraming() {
    auto teacher = load(test::dataDir() / "models" / "bert_tiny");
    QVERIFY(teacher->tokenizer);
    const std::vector<std::string> texts = {"the the the the the the the the the the", "", "the"};
    const TokenizedCorpus c = tokenizeCorpus(*teacher->tokenizer, texts, 6);
    QCOMPARE(c.examples.size(), size_t(2));
    QCOMPARE(c.truncated, 1);
    QCOMPARE(c.skipped, 1);
    const auto full = teacher->tokenizer->encode(texts[0], true).ids;
    QCOMPARE(c.examples[0].size(), size_t(6));
    QCOMPARE(c.examples[0].front(), full.front());  // [CLS]
    QCOMPARE(c.examples[0].back(), full.back());    // [SEP]
  }

  void scheduleWarmupAndDecay() {
    TrainOptions o;
    o.lr = 1.0;
    o.steps = 10;
    o.warmup = 4;
    QCOMPARE(learningRate(o, 0), 0.25);
    QCOMPARE(learningRate(o, 3), 1.0);
    QCOMPARE(learningRate(o, 4), 1.0);
    QCOMPARE(learningRate(o, 7), 0.5);
    QCOMPARE(learningRate(o, 9), 1.0 / 6.0);
  }

  void seededRunHalvesTheAttentionLoss() {
    QTemporaryDir tmp;
    auto teacher = makeTeacher(tmp.path().toStdString());
    auto student = load(makeStudent(std::filesystem::path(tmp.path().toStdString()) / "s"));
    const TokenizedCorpus corpus = syntheticCorpus(64, 1);
    TrainOptions o = smallRun(60);
    o.loss.mapping = {1, 2};
    auto t = Trainer::create(student, teacher, corpus, o);
    QVERIFY2(t.ok(), t.ok() ? "" : t.message().c_str());
    const auto before = (*t)->evaluate(corpus.examples);
    QVERIFY(before.ok());
    RunControl control;
    std::vector<double> losses;
    QVERIFY((*t)->run(control, [&](const StepReport& r) { losses.push_back(r.loss.total); }).ok());
    QCOMPARE(losses.size(), size_t(60));
    const auto after = (*t)->evaluate(corpus.examples);
    QVERIFY(after.ok());
    qInfo("attention KL over the corpus: %.4f -> %.4f", before->total, after->total);
    QVERIFY2(after->total < 0.5 * before->total,
             qPrintable(QString("%1 -> %2").arg(before->total).arg(after->total)));
  }

  void sameSeedSameNumbersWhateverTheThreads() {
    QTemporaryDir tmp;
    auto teacher = load(test::dataDir() / "models" / "bert_tiny");
    auto student = load(makeStudent(std::filesystem::path(tmp.path().toStdString()) / "s"));
    const TokenizedCorpus corpus = syntheticCorpus(20, 2);
    std::vector<Buffer> finals;
    for (int threads : {1, 2, 1}) {
      TrainOptions o = smallRun(5);
      o.threads = threads;
      auto t = Trainer::create(student, teacher, corpus, o);
      QVERIFY(t.ok());
      RunControl c;
      QVERIFY((*t)->run(c).ok());
      finals.push_back((*t)->network().params);
    }
    QVERIFY2(finals[0] == finals[2], "1 thread twice");
    QVERIFY2(finals[0] == finals[1], "1 vs 2 threads");
    TrainOptions o = smallRun(5);
    o.seed = 43;  // another order of the examples
    auto t = Trainer::create(student, teacher, corpus, o);
    RunControl c;
    QVERIFY((*t)->run(c).ok());
    QVERIFY((*t)->network().params != finals[0]);
  }

  void checkpointsReopenAndResumeExactly() {
    QTemporaryDir tmp;
    const std::filesystem::path root = tmp.path().toStdString();
    auto teacher = load(test::dataDir() / "models" / "bert_tiny");
    auto student = load(makeStudent(root / "s"));
    const TokenizedCorpus corpus = syntheticCorpus(30, 3);
    TrainOptions o = smallRun(6);
    o.loss.hiddenWeight = 0.5;  // projections (32 ← 16) are part of the state
    o.checkpointEvery = 3;
    o.checkpointDir = root / "ck";
    auto straight = Trainer::create(student, teacher, corpus, o);
    QVERIFY(straight.ok());
    RunControl c;
    QVERIFY((*straight)->run(c).ok());
    QCOMPARE((*straight)->checkpoints().size(), size_t(2));
    // The step-3 checkpoint loads as a model whose weights are the network's.
    const auto ck3 = root / "ck" / "step-000003";
    auto reopened = load(ck3);
    QCOMPARE(reopened->config.hidden, 16);
    // Resume from step 3: the same final numbers as the straight run.
    auto resumed = Trainer::create(reopened, teacher, corpus, o);
    QVERIFY(resumed.ok());
    QVERIFY((*resumed)->resumeFrom(ck3).ok());
    QCOMPARE((*resumed)->completedSteps(), 3);
    auto net3 = networkFromWeights(reopened->config, reopened->weights);
    QVERIFY(net3.ok());
    QVERIFY(net3->params == (*resumed)->network().params);  // file == state, bit for bit
    TrainOptions o2 = o;
    o2.checkpointDir = root / "ck2";
    auto resumed2 = Trainer::create(reopened, teacher, corpus, o2);
    QVERIFY((*resumed2)->resumeFrom(ck3).ok());
    RunControl c2;
    QVERIFY((*resumed2)->run(c2).ok());
    QVERIFY((*resumed2)->network().params == (*straight)->network().params);
    // The final save loads and equals the trained network.
    QVERIFY((*straight)->save(root / "final").ok());
    auto fin = load(root / "final");
    auto netF = networkFromWeights(fin->config, fin->weights);
    QVERIFY(netF->params == (*straight)->network().params);
    // Wrong state: a checkpoint of another configuration is refused with a message.
    TrainOptions o3 = o;
    o3.loss.hiddenWeight = 0;
    auto other = Trainer::create(reopened, teacher, corpus, o3);
    const Status st = (*other)->resumeFrom(ck3);
    QVERIFY(!st.ok());
    QVERIFY(st.message().find("projections") != std::string::npos ||
            st.message().find("does not match") != std::string::npos);
    QVERIFY(!(*other)->resumeFrom(root / "nowhere").ok());
  }

  void cancelLeavesTheLastCheckpointWhole() {
    QTemporaryDir tmp;
    const std::filesystem::path root = tmp.path().toStdString();
    auto teacher = load(test::dataDir() / "models" / "bert_tiny");
    auto student = load(makeStudent(root / "s"));
    TrainOptions o = smallRun(1000);
    o.checkpointEvery = 2;
    o.checkpointDir = root / "ck";
    auto t = Trainer::create(student, teacher, syntheticCorpus(30, 4), o);
    QVERIFY(t.ok());
    RunControl control;
    int seen = 0;
    const Status st = (*t)->run(control, [&](const StepReport& r) {
      if (++seen == 5) control.cancel();  // mid-run, after the step-4 checkpoint
      QVERIFY(r.step == seen);
    });
    QVERIFY(!st.ok());
    QCOMPARE(QString::fromStdString(st.message()), QString("cancelled"));
    QCOMPARE((*t)->completedSteps(), 5);
    std::vector<std::string> entries;
    for (const auto& e : std::filesystem::directory_iterator(root / "ck"))
      entries.push_back(e.path().filename().string());
    std::sort(entries.begin(), entries.end());
    QCOMPARE(entries, (std::vector<std::string>{"step-000002", "step-000004"}));
    auto last = load(root / "ck" / "step-000004");
    QCOMPARE(last->config.layers, 2);
    auto resumed = Trainer::create(last, teacher, syntheticCorpus(30, 4), o);
    QVERIFY((*resumed)->resumeFrom(root / "ck" / "step-000004").ok());
    QCOMPARE((*resumed)->completedSteps(), 4);
  }

  void pauseAndResumeFromAnotherThread() {
    QTemporaryDir tmp;
    auto teacher = load(test::dataDir() / "models" / "bert_tiny");
    auto student = load(makeStudent(std::filesystem::path(tmp.path().toStdString()) / "s"));
    auto t = Trainer::create(student, teacher, syntheticCorpus(20, 5), smallRun(6));
    QVERIFY(t.ok());
    RunControl control;
    std::atomic<int> steps{0};
    control.pause();
    std::thread worker([&] {
      (void)(*t)->run(control, [&](const StepReport&) { ++steps; });
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    QCOMPARE(steps.load(), 0);  // paused before the first step
    control.resume();
    worker.join();
    QCOMPARE(steps.load(), 6);
  }

  void groupLassoShrinksHeads() {
    QTemporaryDir tmp;
    auto teacher = load(test::dataDir() / "models" / "bert_tiny");
    auto student = load(makeStudent(std::filesystem::path(tmp.path().toStdString()) / "s"));
    const TokenizedCorpus corpus = syntheticCorpus(20, 6);
    auto norms = [&](double lambda) {
      TrainOptions o = smallRun(20);
      o.groupLasso = {GroupLasso::Groups::Heads, lambda};
      auto t = Trainer::create(student, teacher, corpus, o);
      RunControl c;
      if (!(*t)->run(c).ok()) return std::vector<double>{};
      return groupNorms((*t)->network(), GroupLasso::Groups::Heads);
    };
    const auto plain = norms(0.0), lasso = norms(0.05);
    QCOMPARE(plain.size(), size_t(8));
    double a = 0, b = 0;
    for (size_t i = 0; i < plain.size(); ++i) {
      a += plain[i];
      b += lasso[i];
    }
    QVERIFY2(b < 0.8 * a, qPrintable(QString("%1 vs %2").arg(b).arg(a)));
    // The penalty's gradient matches finite differences.
    Network net = randomNetwork(tinyConfig(Architecture::Bert, 1, 2, 4), 9);
    std::vector<float> grad(net.layout.size, 0.0f);
    const GroupLasso gl{GroupLasso::Groups::Ffn, 0.3};
    groupLasso(net, gl, grad.data());
    std::vector<float> scratch(net.layout.size);
    std::mt19937 rng(1);
    checkGradient("ffn groups", net.params.data(), grad.data(),
                  sample(net.layout.size, 60, rng), [&] { return groupLasso(net, gl, scratch.data()); });
  }

  void quantizationAwareTraining() {
    QTemporaryDir tmp;
    auto teacher = load(test::dataDir() / "models" / "bert_tiny");
    auto student = load(makeStudent(std::filesystem::path(tmp.path().toStdString()) / "s"));
    TrainOptions o = smallRun(15);
    quant::ModelQuantPlan plan;
    QVERIFY(quant::applyPlanText("q,k,v,o,ffn_in,ffn_out=uniform:4:channel", plan).ok());
    o.qat = plan;
    const TokenizedCorpus corpus = syntheticCorpus(32, 7);
    auto t = Trainer::create(student, teacher, corpus, o);
    QVERIFY2(t.ok(), t.ok() ? "" : t.message().c_str());
    const auto before = (*t)->evaluate(corpus.examples);
    RunControl c;
    QVERIFY((*t)->run(c).ok());
    const auto after = (*t)->evaluate(corpus.examples);
    QVERIFY(after->total < before->total);
    // The forward pass of QAT sees 4-bit weights: its loss differs from the float one.
    o.qat = std::nullopt;
    auto floatTrainer = Trainer::create(student, teacher, corpus, o);
    const auto floatLoss = (*floatTrainer)->evaluate(corpus.examples);
    QVERIFY(std::abs(floatLoss->total - before->total) > 1e-6);  // 4 bits changed the start
    o.qat = plan;
    o.lr = 0;  // invalid
    QVERIFY(!Trainer::create(student, teacher, corpus, o).ok());
    o.lr = 1e-3;
    quant::ModelQuantPlan bad;
    bad.targets[0] = quant::Spec{quant::Method::Binary, 3};
    o.qat = bad;
    QVERIFY(!Trainer::create(student, teacher, corpus, o).ok());
  }

  void badInputsAreRefused() {
    QTemporaryDir tmp;
    auto teacher = load(test::dataDir() / "models" / "bert_tiny");
    auto student = load(makeStudent(std::filesystem::path(tmp.path().toStdString()) / "s"));
    TrainOptions o = smallRun(3);
    QVERIFY(!Trainer::create(student, teacher, TokenizedCorpus{}, o).ok());
    TokenizedCorpus bad = syntheticCorpus(3, 1);
    bad.examples[1][2] = 5000;
    QVERIFY(!Trainer::create(student, teacher, bad, o).ok());
    o.seq = 1000;
    QVERIFY(!Trainer::create(student, teacher, syntheticCorpus(3, 1), o).ok());
    o = smallRun(3);
    QVERIFY(!Trainer::create(student, nullptr, syntheticCorpus(3, 1), o).ok());  // needs a teacher
    o.checkpointEvery = 1;  // no folder
    QVERIFY(!Trainer::create(student, teacher, syntheticCorpus(3, 1), o).ok());
  }

  void invalidLossOptions() {
    const ModelConfig t = tinyConfig(Architecture::Bert, 4, 4, 8);
    const ModelConfig s = tinyConfig(Architecture::Bert, 2, 2, 6);
    LossOptions o;
    o.mapping = {1, 3};
    QVERIFY(validateLoss(o, t, s).ok());
    o.heads = HeadMode::Relation;
    o.relationHeads = 4;  // does not divide 6
    QVERIFY(!validateLoss(o, t, s).ok());
    o = {};
    o.mapping = {1, 4};
    QVERIFY(!validateLoss(o, t, s).ok());
    o.mapping = {1};
    QVERIFY(!validateLoss(o, t, s).ok());
    o.mapping = {1, 3};
    o.logitWeight = 1;  // BERT has no tied LM head here
    QVERIFY(!validateLoss(o, t, s).ok());
    o.logitWeight = 0;
    o.lmWeight = 1;
    QVERIFY(!validateLoss(o, t, s).ok());
  }
};

QTEST_GUILESS_MAIN(TestDistill)
#include "test_distill.moc"
