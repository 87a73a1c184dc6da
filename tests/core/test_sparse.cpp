// Sparsification: pruning masks equal torch.nn.utils.prune's (fixtures from
// tests/tools/make_prune_fixtures.py), N:M and block structure, exact global
// sparsity, attention thresholds / top-k / mass inside the forward pass, head
// removal, head importance, CSR, and invalid parameters.
#include <QTest>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <tuple>

#include "core/attention/compare.h"
#include "core/attention/metrics.h"
#include "core/io/npy.h"
#include "core/model/model.h"
#include "core/sparse/model_sparse.h"
#include "tests/core/test_helpers.h"

using namespace attn;
using namespace attn::sparse;

namespace {
constexpr double kRowSumTol = 1e-5;    // renormalised float32 rows
constexpr double kAblationTol = 1e-6;  // removing a head vs zeroing its probabilities

NpyArray load(const std::string& name) {
  auto a = readNpy(test::dataDir() / "sparse" / (name + ".npy"));
  if (!a) qFatal("%s", a.message().c_str());
  return *a;
}

std::vector<float> floats(const NpyArray& a) {
  return std::vector<float>(a.values.begin(), a.values.end());
}

std::vector<float> randomWeights(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 0.05f);
  std::vector<float> w(static_cast<size_t>(n));
  for (auto& x : w) x = d(rng);
  return w;
}

std::shared_ptr<const Model> fixture(const std::string& name) {
  auto m = loadModel(test::dataDir() / "models" / name);
  if (!m) qFatal("%s", m.message().c_str());
  return *m;
}

std::vector<float> stochastic(int s, uint32_t seed) {  // rows sum to 1
  std::mt19937 rng(seed);
  std::exponential_distribution<float> e(1.0f);
  std::vector<float> p(size_t(s) * s);
  for (int i = 0; i < s; ++i) {
    float sum = 0;
    for (int j = 0; j < s; ++j) sum += p[size_t(i) * s + j] = e(rng);
    for (int j = 0; j < s; ++j) p[size_t(i) * s + j] /= sum;
  }
  return p;
}
}  // namespace

class TestSparse : public QObject {
  Q_OBJECT

 private slots:
  // The spy plot's block densities, against counting each block's cells directly
  // (blocks at the right and bottom edges are smaller).
  void blockDensityCountsEachBlock() {
    const int64_t R = 7, C = 10;
    auto m = sparse::Bitmap::ones(R, C);
    std::mt19937 rng(3);
    for (int64_t i = 0; i < R * C; ++i) m.set(i, rng() % 3 != 0);
    const sparse::BlockDensity d = sparse::blockDensity(m, 3);
    QCOMPARE(d.rowStep, int64_t(3));
    QCOMPARE(d.colStep, int64_t(4));
    QCOMPARE(d.rows, 3);
    QCOMPARE(d.cols, 3);
    for (int br = 0; br < 3; ++br)
      for (int bc = 0; bc < 3; ++bc) {
        int on = 0, all = 0;
        for (int64_t r = br * 3; r < std::min<int64_t>(R, br * 3 + 3); ++r)
          for (int64_t c = bc * 4; c < std::min<int64_t>(C, bc * 4 + 4); ++c) on += m.get(r * C + c), ++all;
        QCOMPARE(d.values[size_t(br * 3 + bc)], float(on) / float(all));
      }
    const sparse::BlockDensity one = sparse::blockDensity(m, 100);  // cell per weight
    QCOMPARE(one.rows, int(R));
    for (int64_t i = 0; i < R * C; ++i) QCOMPARE(one.values[size_t(i)], m.get(i) ? 1.0f : 0.0f);
  }

  void sameMasksAsPyTorch_data() {
    QTest::addColumn<QString>("fixture");
    QTest::addColumn<QString>("method");
    QTest::addColumn<double>("sparsity");
    QTest::addColumn<int>("norm");
    QTest::newRow("l1_unstructured 0.3") << "l1_unstructured_30"
                                         << "magnitude" << 0.3 << 1;
    QTest::newRow("l1_unstructured 0.5") << "l1_unstructured_50"
                                         << "magnitude" << 0.5 << 1;
    QTest::newRow("ln_structured rows L1 0.25") << "ln_structured_rows_l1_25"
                                                << "rows" << 0.25 << 1;
    QTest::newRow("ln_structured rows L2 0.5") << "ln_structured_rows_l2_50"
                                               << "rows" << 0.5 << 2;
    QTest::newRow("ln_structured cols L1 0.25") << "ln_structured_cols_l1_25"
                                                << "cols" << 0.25 << 1;
  }

  void sameMasksAsPyTorch() {
    QFETCH(QString, fixture);
    QFETCH(QString, method);
    QFETCH(double, sparsity);
    QFETCH(int, norm);
    const NpyArray a = load("weights_a");
    const auto w = floats(a);
    PruneSpec s;
    s.sparsity = sparsity;
    s.norm = norm;
    auto spec = parsePruneMethod(method.toStdString(), s);
    QVERIFY(spec.ok());
    auto mask = pruneMask(w.data(), a.shape[0], a.shape[1], *spec);
    QVERIFY(mask.ok());
    const NpyArray expect = load(fixture.toStdString());
    const auto got = mask->bytes();
    int differ = 0;
    for (size_t i = 0; i < got.size(); ++i) differ += got[i] != uint8_t(expect.values[i]);
    QCOMPARE(differ, 0);
  }

  void globalSameAsPyTorch() {
    const NpyArray a = load("weights_a"), b = load("weights_b");
    const auto wa = floats(a), wb = floats(b);
    auto masks = globalMagnitudeMasks(
        {{wa.data(), a.shape[0], a.shape[1]}, {wb.data(), b.shape[0], b.shape[1]}}, 0.4);
    QVERIFY(masks.ok());
    for (int t = 0; t < 2; ++t) {
      const NpyArray expect = load(t == 0 ? "global_40_a" : "global_40_b");
      const auto got = (*masks)[size_t(t)].bytes();
      for (size_t i = 0; i < got.size(); ++i) QCOMPARE(got[i], uint8_t(expect.values[i]));
    }
  }

  void globalIsExactEvenWithTies() {
    // Values on a coarse grid: many equal magnitudes, including at the cut.
    std::vector<std::vector<float>> ws;
    std::vector<MatrixView> views;
    for (int t = 0; t < 3; ++t) {
      auto w = randomWeights(40 * 50, 10 + t);
      for (auto& x : w) x = std::round(x * 100) / 100;
      ws.push_back(std::move(w));
    }
    for (auto& w : ws) views.push_back({w.data(), 40, 50});
    for (double s : {0.0, 0.1, 0.37, 0.5, 0.9}) {
      auto masks = globalMagnitudeMasks(views, s);
      QVERIFY(masks.ok());
      int64_t removed = 0;
      float maxRemoved = 0, minKept = INFINITY;
      for (size_t t = 0; t < ws.size(); ++t)
        for (int64_t i = 0; i < 2000; ++i) {
          const float m = std::fabs(ws[t][size_t(i)]);
          if ((*masks)[t].get(i))
            minKept = std::min(minKept, m);
          else
            ++removed, maxRemoved = std::max(maxRemoved, m);
        }
      QCOMPARE(removed, int64_t(std::nearbyint(s * 6000)));
      if (removed > 0) QVERIFY(maxRemoved <= minKept);  // nothing kept is smaller
    }
  }

  // On a pool too (the groups' bits gathered into words in parallel when m divides
  // 64, in order when it does not: m = 6, groups straddling words): the same mask.
  void nmHasExactlyNPerGroup() {
    const auto w = randomWeights(16 * 64, 5);
    ThreadPool pool(2);
    for (auto [n, m, cols] : {std::tuple{2, 4, 64}, {1, 4, 64}, {4, 8, 64}, {3, 6, 60}}) {
      PruneSpec s;
      s.method = PruneMethod::NM;
      s.n = n;
      s.m = m;
      auto mask = pruneMask(w.data(), 16, cols, s, &pool);
      QVERIFY2(mask.ok(), mask.ok() ? "" : mask.message().c_str());
      auto serial = pruneMask(w.data(), 16, cols, s);
      QVERIFY(serial.ok());
      QVERIFY(mask->words() == serial->words());
      for (int64_t g = 0; g < 16 * cols / m; ++g) {
        int kept = 0;
        float minKept = INFINITY, maxDropped = 0;
        for (int j = 0; j < m; ++j) {
          const bool k = mask->get(g * m + j);
          kept += k;
          const float a = std::fabs(w[size_t(g * m + j)]);
          if (k)
            minKept = std::min(minKept, a);
          else
            maxDropped = std::max(maxDropped, a);
        }
        QCOMPARE(kept, n);
        QVERIFY(maxDropped <= minKept);  // the largest are the ones kept
      }
      QVERIFY(std::fabs(mask->sparsity() - (1.0 - double(n) / m)) < 1e-12);
    }
  }

  void blocksRankedByNorm() {
    const auto w = randomWeights(32 * 48, 8);
    PruneSpec s;
    s.method = PruneMethod::Block;
    s.block = 8;
    s.sparsity = 0.4;
    auto mask = pruneMask(w.data(), 32, 48, s);
    QVERIFY(mask.ok());
    std::vector<double> removedNorms, keptNorms;
    for (int br = 0; br < 4; ++br)
      for (int bc = 0; bc < 6; ++bc) {
        double norm = 0;
        int kept = 0;
        for (int r = 0; r < 8; ++r)
          for (int c = 0; c < 8; ++c) {
            const int64_t i = int64_t(br * 8 + r) * 48 + bc * 8 + c;
            norm += double(w[size_t(i)]) * w[size_t(i)];
            kept += mask->get(i);
          }
        QVERIFY(kept == 0 || kept == 64);  // whole blocks
        (kept == 0 ? removedNorms : keptNorms).push_back(norm);
      }
    QCOMPARE(int(removedNorms.size()), int(std::nearbyint(0.4 * 24)));
    QVERIFY(*std::max_element(removedNorms.begin(), removedNorms.end()) <=
            *std::min_element(keptNorms.begin(), keptNorms.end()));
  }

  void csrRoundTrips() {
    auto w = randomWeights(12 * 20, 3);
    PruneSpec s;
    s.sparsity = 0.6;
    const Bitmap mask = pruneMask(w.data(), 12, 20, s).value();
    const Csr c = toCsr(w.data(), mask);
    QCOMPARE(int64_t(c.values.size()), mask.count());
    std::vector<float> back(w.size(), 0.0f);
    for (int64_t r = 0; r < 12; ++r)
      for (int64_t k = c.rowPtr[size_t(r)]; k < c.rowPtr[size_t(r) + 1]; ++k)
        back[size_t(r * 20 + c.colIdx[size_t(k)])] = c.values[size_t(k)];
    applyMask(w.data(), mask);
    QCOMPARE(back, w);
    const SparseBytes b = sparseBytes(mask);
    QCOMPARE(b.dense, int64_t(4 * 240));
    QCOMPARE(b.csr, c.bytes());
    QCOMPARE(b.bitmap, int64_t(30 + 4 * mask.count()));
  }

  // applyMask works a 64-bit word at a time: every removed weight (also NaN, −0)
  // becomes +0.0f, every kept one keeps its bits, in whole words, all-kept words
  // and a last partial word alike.
  void applyMaskZeroesExactlyTheRemoved() {
    const int64_t rows = 8, cols = 37;  // 296 weights: 5 words, the last one 40 (5 bytes of 8)
    std::vector<float> w = randomWeights(rows * cols, 11);
    w[3] = std::numeric_limits<float>::quiet_NaN();
    w[5] = -0.0f;
    w[200] = std::numeric_limits<float>::quiet_NaN();
    std::vector<uint64_t> words(size_t((rows * cols + 63) / 64));
    std::mt19937_64 rng(5);
    for (auto& x : words) x = rng();
    words[1] = ~uint64_t(0);  // all kept
    words[2] = 0;             // all removed
    words.back() &= (uint64_t(1) << (rows * cols % 64)) - 1;  // no bits past the end
    words[3] &= ~(uint64_t(1) << 8);                         // the NaN at 200 removed
    words[0] |= uint64_t(1) << 3;                            // the NaN at 3 kept
    words[0] &= ~(uint64_t(1) << 5);                         // −0 at 5 removed
    const Bitmap mask = Bitmap::fromWords(rows, cols, words);
    std::vector<float> got = w;
    got.resize(w.size() + 16, 5.0f);  // guards: nothing is written past the last weight
    applyMask(got.data(), mask);
    QVERIFY(std::all_of(got.begin() + ptrdiff_t(w.size()), got.end(), [](float x) { return x == 5.0f; }));
    for (int64_t i = 0; i < rows * cols; ++i) {
      const bool kept = (words[size_t(i / 64)] >> (i % 64)) & 1u;
      QCOMPARE(mask.get(i), kept);
      const float want = kept ? w[size_t(i)] : 0.0f;
      if (std::memcmp(&got[size_t(i)], &want, sizeof(float)) != 0)
        QFAIL(qPrintable(QString("weight %1: %2 instead of %3").arg(i).arg(got[size_t(i)]).arg(want)));
    }
    // Into another buffer (every weight written, the source untouched): the same bits.
    std::vector<float> into(w.size() + 16, std::numeric_limits<float>::quiet_NaN());
    const std::vector<float> source = w;
    maskedCopy(source.data(), mask, into.data());
    QVERIFY(source == w || std::isnan(w[3]));  // (NaN != NaN: compared bitwise below)
    QCOMPARE(std::memcmp(source.data(), w.data(), w.size() * sizeof(float)), 0);
    QCOMPARE(std::memcmp(into.data(), got.data(), w.size() * sizeof(float)), 0);
    QVERIFY(std::all_of(into.begin() + ptrdiff_t(w.size()), into.end(), [](float x) { return std::isnan(x); }));
    // In chunks of words on a pool (a mask of 4708 words; chunks of any size, the
    // last word partial): the same bits as on one thread, in place and into a copy.
    ThreadPool pool(2), three(3);
    const int64_t bigRows = 301, bigCols = 1001;
    const std::vector<float> big = randomWeights(bigRows * bigCols, 12);
    std::vector<uint64_t> bigWords(size_t((bigRows * bigCols + 63) / 64));
    for (auto& x : bigWords) x = rng() & rng();  // some words all removed, some partly
    for (size_t k = 0; k < bigWords.size(); k += 7) bigWords[k] = ~uint64_t(0);
    bigWords.back() &= (uint64_t(1) << (bigRows * bigCols % 64)) - 1;
    const Bitmap bigMask = Bitmap::fromWords(bigRows, bigCols, bigWords);
    std::vector<float> serial = big;
    applyMask(serial.data(), bigMask);
    for (ThreadPool* p : {&pool, &three}) {
      std::vector<float> inPlace = big, copy(big.size(), std::numeric_limits<float>::quiet_NaN());
      applyMask(inPlace.data(), bigMask, p);
      maskedCopy(big.data(), bigMask, copy.data(), p);
      QCOMPARE(std::memcmp(inPlace.data(), serial.data(), big.size() * sizeof(float)), 0);
      QCOMPARE(std::memcmp(copy.data(), serial.data(), big.size() * sizeof(float)), 0);
    }
  }

  void invalidParametersAreErrors() {
    const auto w = randomWeights(8 * 12, 1);
    auto error = [&](PruneSpec s) {
      auto m = pruneMask(w.data(), 8, 12, s);
      return m.ok() ? QString() : QString::fromStdString(m.message());
    };
    PruneSpec s;
    s.sparsity = 1.0;
    QVERIFY(error(s).contains("sparsity must be in [0, 1)"));
    s.sparsity = -0.1;
    QVERIFY(error(s).contains("sparsity must be in [0, 1)"));
    s = PruneSpec{PruneMethod::NM, 0.5, 1, 4, 2, 5};
    QVERIFY(error(s).contains("M = 5 does not divide the input dimension 12"));
    s = PruneSpec{PruneMethod::NM, 0.5, 1, 4, 5, 4};
    QVERIFY(error(s).contains("1 ≤ N ≤ M"));
    s = PruneSpec{PruneMethod::Block, 0.5, 1, 5, 2, 4};
    QVERIFY(error(s).contains("block size 5 does not divide"));
    s = PruneSpec{PruneMethod::Rows, 0.5, 3, 4, 2, 4};
    QVERIFY(error(s).contains("L1 or L2"));
    QVERIFY(!parsePruneMethod("nm:2", PruneSpec{}).ok());
    QVERIFY(QString::fromStdString(parsePruneMethod("random", PruneSpec{}).message())
                .contains("unknown pruning method 'random'"));
    QVERIFY(!validate(AttentionRule{AttentionRule::Kind::Threshold, -0.01, 1, 0.9, false}).ok());
    QVERIFY(!validate(AttentionRule{AttentionRule::Kind::TopK, 0.1, 0, 0.9, false}).ok());
    QVERIFY(!validate(AttentionRule{AttentionRule::Kind::Mass, 0.1, 1, 1.5, false}).ok());
  }

  void attentionRules() {
    const int S = 16;
    const auto dense = stochastic(S, 4);
    // τ = 0 is the identity, bit for bit.
    auto p = dense;
    SparsityCounts c = sparsifyMap(p.data(), S, {AttentionRule::Kind::Threshold, 0.0, 1, 1, false});
    QCOMPARE(p, dense);
    QCOMPARE(c.kept, c.dense);
    QCOMPARE(c.sparsity(), 0.0);
    // Threshold: exactly the entries below τ are dropped; renormalised rows sum to 1.
    p = dense;
    c = sparsifyMap(p.data(), S, {AttentionRule::Kind::Threshold, 0.05, 1, 1, true});
    int64_t below = 0;
    double keptMass = 0;
    for (float x : dense) {
      if (double(x) < 0.05)
        ++below;
      else
        keptMass += x;
    }
    QCOMPARE(c.dense - c.kept, below);
    QVERIFY(std::fabs(c.retainedMass() - keptMass / S) < 1e-9);
    for (int i = 0; i < S; ++i) {
      double sum = 0;
      for (int j = 0; j < S; ++j) {
        sum += p[size_t(i) * S + j];
        if (double(dense[size_t(i) * S + j]) < 0.05) QCOMPARE(p[size_t(i) * S + j], 0.0f);
      }
      QVERIFY(std::fabs(sum - 1.0) < kRowSumTol);
    }
    // Top-k: k per row, the largest ones.
    p = dense;
    c = sparsifyMap(p.data(), S, {AttentionRule::Kind::TopK, 0, 3, 1, false});
    QCOMPARE(c.kept, int64_t(3 * S));
    for (int i = 0; i < S; ++i) {
      float minKept = 1, maxDropped = 0;
      for (int j = 0; j < S; ++j)
        (p[size_t(i) * S + j] > 0 ? minKept = std::min(minKept, dense[size_t(i) * S + j])
                                  : maxDropped = std::max(maxDropped, dense[size_t(i) * S + j]));
      QVERIFY(maxDropped <= minKept);
    }
    // Mass: the fewest keys reaching p; one fewer would not.
    p = dense;
    sparsifyMap(p.data(), S, {AttentionRule::Kind::Mass, 0, 1, 0.7, false});
    for (int i = 0; i < S; ++i) {
      double kept = 0, smallest = 1;
      for (int j = 0; j < S; ++j)
        if (p[size_t(i) * S + j] > 0)
          kept += p[size_t(i) * S + j], smallest = std::min<double>(smallest, p[size_t(i) * S + j]);
      QVERIFY(kept >= 0.7 - 1e-6);
      QVERIFY(kept - smallest < 0.7);
    }
  }

  void thresholdCurveEqualsPreviews() {
    // One pass for many τ gives what one preview per τ gives: the sparsity exactly
    // (the same entries kept), the KL up to the order of summation. τ at exact
    // entry values too (kept: x ≥ τ), below every entry and above every entry.
    const auto m = fixture("bert_tiny");
    std::vector<int32_t> ids;
    for (int i = 0; i < 40; ++i) ids.push_back(2 + (i * 7) % 90);
    auto dense = forward(m->config, m->weights, ids, {});
    QVERIFY(dense.ok());
    std::vector<double> taus = {0.0, 1e-6, 1e-3, 0.01, double(dense->attention[5]), 0.05, 0.2, 0.9, 2.0};
    std::sort(taus.begin(), taus.end());
    ThreadPool pool(3);
    for (ThreadPool* p : {static_cast<ThreadPool*>(nullptr), &pool}) {
      const auto curve = thresholdCurve(*dense, taus, p);
      QCOMPARE(curve.size(), taus.size());
      for (size_t k = 0; k < taus.size(); ++k) {
        AttentionPlan plan;
        plan.all = {AttentionRule::Kind::Threshold, taus[k], 1, 1, k % 2 == 0};
        const Preview pv = preview(*dense, plan);
        QCOMPARE(curve[k].tau, taus[k]);
        QCOMPARE(curve[k].sparsity, pv.total.sparsity());
        QVERIFY2(std::abs(curve[k].klMean - pv.klMean) <= 1e-12 * std::max(1.0, pv.klMean),
                 qPrintable(QString("tau %1: %2 vs %3").arg(taus[k]).arg(curve[k].klMean).arg(pv.klMean)));
      }
      QCOMPARE(curve.front().sparsity, 0.0);  // τ = 0 keeps every non-zero entry
      QCOMPARE(curve.back().sparsity, 1.0);   // τ = 2 drops them all
      QVERIFY(curve[4].klMean > 0.0);
    }
  }

  void sparseAttentionPropagates() {
    const auto m = fixture("bert_tiny");
    const std::vector<int32_t> ids = {2, 11, 12, 13, 14, 15, 16, 17, 3};
    AttentionPlan plan;
    plan.all = {AttentionRule::Kind::Threshold, 0.1, 1, 1, true};
    const int H = m->config.heads;
    std::vector<SparsityCounts> counts(size_t(m->config.layers) * H);
    auto dense = forward(m->config, m->weights, ids, {});
    auto sparseRun =
        forward(m->config, m->weights, ids, {}, withAttentionSparsity({}, plan, &counts, H));
    QVERIFY(dense.ok() && sparseRun.ok());
    const Preview pv = preview(*dense, plan);
    const int S = dense->seq;
    // Layer 0 sees the dense input: the preview is exact there; later layers see
    // the sparse maps before them, so they differ from the preview.
    for (int h = 0; h < H; ++h) {
      for (int i = 0; i < S * S; ++i)
        QCOMPARE(sparseRun->attentionMap(0, h)[i], pv.sparse.attentionMap(0, h)[i]);
      QCOMPARE(counts[size_t(h)].kept, pv.counts[size_t(h)].kept);
    }
    QVERIFY(
        test::maxAbsDiff(sparseRun->attentionMap(1, 0), pv.sparse.attentionMap(1, 0), S * S).value >
        0);
    QVERIFY(pv.total.sparsity() > 0 && pv.klMean > 0);
    // The preview's closed-form KL is attentionKl against the renormalised kept entries.
    for (int h = 0; h < H; ++h) {
      std::vector<float> q(pv.sparse.attentionMap(1, h), pv.sparse.attentionMap(1, h) + S * S);
      for (int i = 0; i < S; ++i) {
        double sum = 0;
        for (int j = 0; j < S; ++j) sum += q[size_t(i) * S + j];
        for (int j = 0; j < S; ++j) q[size_t(i) * S + j] = float(q[size_t(i) * S + j] / sum);
      }
      const double expect = attentionKl(dense->attentionMap(1, h), q.data(), S);
      QVERIFY2(std::fabs(pv.kl[size_t(H + h)] - expect) < 1e-6 * std::max(1.0, expect),
               qPrintable(QString("%1 vs %2").arg(pv.kl[size_t(H + h)]).arg(expect)));
    }
    const Fidelity f = fidelity(*dense, *sparseRun);
    QVERIFY(f.hiddenCosine < 1 && f.hiddenCosine > 0.5);
    // Per-head override: head 1 of layer 1 stays dense.
    plan.overrides.push_back({1, 1, AttentionRule{}});
    const Preview p2 = preview(*dense, plan);
    QCOMPARE(p2.counts[size_t(H + 1)].kept, p2.counts[size_t(H + 1)].dense);
  }

  void removingAHeadZeroesItsOutput() {
    const auto m = fixture("gpt2_tiny");  // fused Q/K/V, Conv1D layout
    const std::vector<int32_t> ids = {5, 6, 7, 8, 9, 10, 11};
    ModelPrunePlan plan;
    plan.heads = {{0, 1}, {1, 3}};
    auto pruned = pruneModel(*m, plan);
    QVERIFY(pruned.ok());
    auto removed = forward(pruned->model->config, pruned->model->weights, ids, {});
    ForwardOptions zero;
    zero.attentionTransform = [](int l, int h, float* p, int seq) {
      if ((l == 0 && h == 1) || (l == 1 && h == 3)) std::fill(p, p + seq * seq, 0.0f);
    };
    auto zeroed = forward(m->config, m->weights, ids, {}, zero);
    QVERIFY(removed.ok() && zeroed.ok());
    ATTN_CHECK_CLOSE(removed->lastHidden.data(), zeroed->lastHidden.data(),
                     removed->lastHidden.size(), kAblationTol, "removed head vs zeroed output");
    // Q, K, V and O of both layers carry the removed slices in their masks.
    QCOMPARE(int(pruned->tensors.size()), 8);
    const int D = m->config.hidden, Dh = D / m->config.heads;
    QCOMPARE(pruned->zeros, int64_t(2) * (3 * Dh * D + D * Dh));
  }

  void pruneModelReports() {
    const auto m = fixture("bert_tiny");
    ModelPrunePlan plan;
    PruneSpec g;
    g.method = PruneMethod::Global;
    g.sparsity = 0.3;
    for (Target t : {Target::Q, Target::K, Target::V, Target::O}) plan.targets[size_t(t)] = g;
    PruneSpec nm;
    nm.method = PruneMethod::NM;
    plan.targets[size_t(Target::FfnIn)] = nm;
    auto r = pruneModel(*m, plan);
    QVERIFY(r.ok());
    const int L = m->config.layers;
    QCOMPARE(int(r->tensors.size()), 5 * L);
    int64_t globalWeights = 0, globalZeros = 0;
    for (const auto& t : r->tensors)
      if (t.target != Target::FfnIn) {
        globalWeights += t.mask.size();
        globalZeros += t.mask.size() - t.mask.count();
      } else {
        QCOMPARE(t.mask.sparsity(), 0.5);
      }
    QCOMPARE(globalZeros, int64_t(std::nearbyint(0.3 * double(globalWeights))));  // exact
    QVERIFY(std::fabs(r->sparsity() - double(r->zeros) / double(r->weights)) < 1e-15);
    QCOMPARE(int(r->layerSparsity.size()), L);
    // The pruned weights are zero in the model, the others unchanged.
    const float* a = m->weights.layers[0].ffnIn.w.f32();
    const float* b = r->model->weights.layers[0].ffnIn.w.f32();
    const Bitmap& mask = r->tensors[4].mask;
    QCOMPARE(r->tensors[4].name, std::string("encoder.layer.0.intermediate.dense.weight"));
    for (int64_t i = 0; i < mask.size(); ++i) QCOMPARE(b[i], mask.get(i) ? a[i] : 0.0f);
    // Bad plans are errors that name the tensor.
    plan.targets[size_t(Target::FfnIn)] = PruneSpec{PruneMethod::NM, 0.5, 1, 4, 2, 5};
    auto bad = pruneModel(*m, plan);
    QVERIFY(!bad.ok());
    QVERIFY2(QString::fromStdString(bad.message()).contains("intermediate.dense.weight"),
             bad.message().c_str());
    QVERIFY(!pruneModel(*m, ModelPrunePlan{{}, {{9, 0}}, {}}).ok());  // no such layer
  }

  void headImportanceScores() {
    const auto m = fixture("bert_tiny");
    const std::vector<std::vector<int32_t>> inputs = {{2, 11, 12, 13, 3}, {2, 20, 21, 22, 23, 3}};
    auto ent = headImportance(*m, inputs, Importance::Entropy);
    auto abl = headImportance(*m, inputs, Importance::Ablation);
    QVERIFY(ent.ok() && abl.ok());
    // Entropy: minus the mean row entropy, averaged over the inputs.
    double expect = 0;
    for (const auto& ids : inputs) {
      auto r = forward(m->config, m->weights, ids, {}).value();
      expect -= attentionEntropy(r.attentionMap(1, 2), r.seq) / 2;
    }
    QVERIFY(std::fabs(ent->score[size_t(1 * m->config.heads + 2)] - expect) < 1e-12);
    const auto rank = abl->ranking();
    QCOMPARE(int(rank.size()), m->config.layers * m->config.heads);
    for (size_t i = 1; i < rank.size(); ++i)
      QVERIFY(abl->score[size_t(rank[i - 1].first * m->config.heads + rank[i - 1].second)] <=
              abl->score[size_t(rank[i].first * m->config.heads + rank[i].second)]);
    for (double s : abl->score) QVERIFY(s >= -1e-12);  // 1 − cosine
    QVERIFY(!parseImportance("random").ok());
  }
};

QTEST_GUILESS_MAIN(TestSparse)
#include "test_sparse.moc"
