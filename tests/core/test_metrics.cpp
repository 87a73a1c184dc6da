// Attention metrics on maps whose values are known in closed form.
#include <QTest>
#include <algorithm>
#include <cmath>
#include <functional>
#include <random>

#include "core/attention/compare.h"
#include "core/attention/metrics.h"
#include "core/model/transformer.h"

using namespace attn;

namespace {
constexpr double kExact = 1e-12;
constexpr double kFloat = 1e-6;  // maps stored as float32

std::vector<float> uniform(int s) { return std::vector<float>(size_t(s) * s, 1.0f / s); }
std::vector<float> shifted(int s, int by) {  // one-hot on key i - by (clamped to 0)
  std::vector<float> m(size_t(s) * s, 0.0f);
  for (int i = 0; i < s; ++i) m[size_t(i) * s + std::max(0, i - by)] = 1.0f;
  return m;
}
}  // namespace

class TestMetrics : public QObject {
  Q_OBJECT

 private slots:
  void entropy() {
    const int s = 8;
    QVERIFY(std::abs(attentionEntropy(uniform(s).data(), s) - std::log(8.0)) < kFloat);
    QVERIFY(std::abs(attentionEntropy(shifted(s, 0).data(), s)) < kExact);
    // Half the rows uniform, half one-hot; averaging only the one-hot rows gives 0.
    auto m = uniform(s);
    auto id = shifted(s, 0);
    std::copy(id.begin(), id.begin() + s * s / 2, m.begin());
    QVERIFY(std::abs(attentionEntropy(m.data(), s) - 0.5 * std::log(8.0)) < kFloat);
    std::vector<uint8_t> firstHalf(s, 0);
    std::fill(firstHalf.begin(), firstHalf.begin() + s / 2, 1);
    QVERIFY(std::abs(attentionEntropy(m.data(), s, firstHalf)) < kExact);
  }

  void distance() {
    const int s = 6;
    QVERIFY(std::abs(meanAttentionDistance(shifted(s, 0).data(), s)) < kExact);
    // previous-token head: every row but the first is 1 away.
    QVERIFY(std::abs(meanAttentionDistance(shifted(s, 1).data(), s) - 5.0 / 6.0) < kExact);
    // uniform: mean over i of mean_j |i-j| = (s^2-1)/(3s)
    QVERIFY(std::abs(meanAttentionDistance(uniform(s).data(), s) - (35.0 / 18.0)) < kFloat);
  }

  void divergences() {
    const int s = 2;
    const std::vector<float> p = {0.25f, 0.75f, 0.5f, 0.5f};
    const std::vector<float> q = {0.5f, 0.5f, 0.5f, 0.5f};
    const double kl0 = 0.25 * std::log(0.5) + 0.75 * std::log(1.5);
    QVERIFY(std::abs(attentionKl(p.data(), q.data(), s) - kl0 / 2) < kFloat);
    QVERIFY(std::abs(attentionKl(p.data(), p.data(), s)) < kExact);
    const double mse = (2 * 0.25 * 0.25) / 2 / 2;  // row 0: two cells off by .25
    QVERIFY(std::abs(attentionMse(p.data(), q.data(), s) - mse) < kFloat);
    // JS: symmetric, 0 for equal maps, ln 2 for disjoint one-hots.
    QVERIFY(std::abs(attentionJs(p.data(), q.data(), s) - attentionJs(q.data(), p.data(), s)) <
            kExact);
    const auto a = shifted(4, 0), b = shifted(4, 1);
    std::vector<float> c(16, 0.0f);
    for (int i = 0; i < 4; ++i) c[i * 4 + (i + 1) % 4] = 1.0f;
    QVERIFY(std::abs(attentionJs(a.data(), c.data(), 4) - std::log(2.0)) < kExact);
    QVERIFY(std::abs(attentionJs(a.data(), a.data(), 4)) < kExact);
    // KL of disjoint maps is large but finite (b clamped to eps).
    const double kl = attentionKl(a.data(), c.data(), 4);
    QVERIFY(std::isfinite(kl) && kl > 20.0);
    (void)b;
  }

  // The vectorised row kernels against a plain long-double loop on rows longer
  // than one chunk (256 keys), with exact zeros on either side, tiny q (eps
  // clamp) and a NaN; the fused call equals the two separate ones bit for bit.
  // 303 keys: the last chunk ends inside a SIMD packet (padded with zeros).
  void divergencesMatchAScalarLoop_data() {
    QTest::addColumn<int>("s");
    QTest::newRow("300 keys") << 300;
    QTest::newRow("303 keys") << 303;
  }
  void divergencesMatchAScalarLoop() {
    QFETCH(int, s);
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    std::vector<float> a(size_t(s) * s), b(a.size());
    for (int i = 0; i < s; ++i) {
      double sa = 0, sb = 0;
      for (int j = 0; j < s; ++j) {
        float x = u(rng), y = u(rng);
        if ((i + j) % 7 == 0) x = 0.0f;          // a ignores the key
        if ((i * 3 + j) % 11 == 0) y = 0.0f;     // b ignores it (KL clamps b to eps)
        if (i == 5 && j == 260) y = 1e-30f;      // below eps
        a[size_t(i) * s + j] = x, b[size_t(i) * s + j] = y;
        sa += x, sb += y;
      }
      for (int j = 0; j < s; ++j) a[size_t(i) * s + j] /= float(sa), b[size_t(i) * s + j] /= float(sb);
    }
    auto scalar = [&](bool js) {
      long double total = 0;
      for (int i = 0; i < s; ++i) {
        long double row = 0;
        for (int j = 0; j < s; ++j) {
          const long double p = a[size_t(i) * s + j], q = b[size_t(i) * s + j];
          if (!js) {
            if (p > 0) row += p * std::log(p / std::max<long double>(q, 1e-12L));
          } else {
            const long double m = (p + q) / 2;
            if (p > 0) row += p / 2 * std::log(p / m);
            if (q > 0) row += q / 2 * std::log(q / m);
          }
        }
        total += row;
      }
      return double(total / s);
    };
    constexpr double kSumOrder = 1e-12;  // relative: double sums in another order
    const double kl = attentionKl(a.data(), b.data(), s), js = attentionJs(a.data(), b.data(), s);
    QVERIFY2(std::abs(kl - scalar(false)) <= kSumOrder * std::abs(scalar(false)),
             qPrintable(QString::number(kl - scalar(false))));
    QVERIFY2(std::abs(js - scalar(true)) <= kSumOrder * std::abs(scalar(true)),
             qPrintable(QString::number(js - scalar(true))));
    QVERIFY(kl > 1.0 && js > 0.01);  // the zeros in b cost ~ln(1/eps) each
    long double mse = 0;  // and the MSE (eight double lanes) against a plain loop
    for (int i = 0; i < s; ++i) {
      long double row = 0;
      for (int j = 0; j < s; ++j) {
        const long double d = (long double)a[size_t(i) * s + j] - b[size_t(i) * s + j];
        row += d * d;
      }
      mse += row / s;
    }
    mse /= s;
    QVERIFY2(std::abs(attentionMse(a.data(), b.data(), s) - double(mse)) <= kSumOrder * double(mse),
             qPrintable(QString::number(attentionMse(a.data(), b.data(), s) - double(mse))));
    const KlJs both = attentionKlJs(a.data(), b.data(), s);
    QCOMPARE(both.kl, kl);
    QCOMPARE(both.js, js);
    std::vector<uint8_t> rows(size_t(s), 0);
    for (int i = 0; i < s; i += 3) rows[size_t(i)] = 1;
    const KlJs some = attentionKlJs(a.data(), b.data(), s, rows);
    QCOMPARE(some.kl, attentionKl(a.data(), b.data(), s, rows));
    QCOMPARE(some.js, attentionJs(a.data(), b.data(), s, rows));
    QVERIFY(some.kl != kl);
    // A NaN in b: NaN KL and JS, as the scalar definition gives.
    b[size_t(2) * s + 270] = std::nanf("");
    QVERIFY(std::isnan(attentionKl(a.data(), b.data(), s)));
    QVERIFY(std::isnan(attentionJs(a.data(), b.data(), s)));
    QVERIFY(std::isnan(attentionKlJs(a.data(), b.data(), s).kl));
  }

  // Rows of a compressed map as fidelity() and the teacher KL compare them: softmax
  // rows (sum 1 within 1e-5) as they are, others divided by their sum, empty rows 0;
  // the map itself when nothing needs dividing (no copy).
  void renormalisedRowsByHand() {
    const int s = 3;
    const std::vector<float> ok = {0.2f, 0.3f, 0.5f, 1.0f, 0.0f, 0.0f, 0.5f, 0.25f, 0.25f};
    std::vector<float> buf;
    QCOMPARE(renormalisedRows(ok.data(), s, buf), ok.data());
    QVERIFY(buf.empty());
    const std::vector<float> cut = {0.2f, 0.3f, 0.5f,    // kept
                                    0.5f, 0.0f, 0.0f,    // half its mass dropped
                                    0.0f, 0.0f, 0.0f};  // all dropped
    const float* got = renormalisedRows(cut.data(), s, buf);
    QCOMPARE(got, buf.data());
    const std::vector<float> want = {0.2f, 0.3f, 0.5f, 1.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
    for (int k = 0; k < s * s; ++k) QCOMPARE(got[k], want[size_t(k)]);
  }

  void uniformMapping() {
    QCOMPARE(uniformLayerMap(2, 4), (std::vector<int>{1, 3}));
    QCOMPARE(uniformLayerMap(6, 12), (std::vector<int>{1, 3, 5, 7, 9, 11}));
    QCOMPARE(uniformLayerMap(3, 3), (std::vector<int>{0, 1, 2}));
    QCOMPARE(uniformLayerMap(4, 6), (std::vector<int>{1, 2, 4, 5}));  // 1.5→2, 3, 4.5→5, 6
  }

  void lossMatrixByHand() {
    // Teacher: 2 layers, student: 2 layers, 1 head, 2 tokens.
    ForwardResult t, st;
    t.layers = st.layers = 2;
    t.heads = st.heads = 1;
    t.seq = st.seq = 2;
    t.attention = {1.0f, 0.0f, 0.5f, 0.5f,     // teacher layer 0
                   0.5f, 0.5f, 0.5f, 0.5f};    // teacher layer 1
    st.attention = {1.0f,  0.0f,  0.5f, 0.5f,  // student layer 0 = teacher layer 0
                    0.25f, 0.75f, 0.5f, 0.5f};
    const LossMatrix m = lossMatrix(t, st);
    QCOMPARE(m.teacherLayers, 2);
    QVERIFY(std::abs(m.at(m.mse, 0, 0)) < kExact);
    QVERIFY(std::abs(m.at(m.kl, 0, 0)) < kExact);
    // teacher 1 vs student 1: row 0 differs by .25 in both cells → MSE = 2·.0625 / 4.
    QVERIFY(std::abs(m.at(m.mse, 1, 1) - 0.125 / 4) < kFloat);
    const double kl = 0.5 * std::log(0.5 / 0.25) + 0.5 * std::log(0.5 / 0.75);
    QVERIFY(std::abs(m.at(m.kl, 1, 1) - kl / 2) < kFloat);
    // teacher 0 row 0 puts mass where student 1 has 0.25: KL = ln 4 on that row.
    QVERIFY(std::abs(m.at(m.kl, 0, 1) - std::log(4.0) / 2) < kFloat);
  }

  void perHeadLossTable() {
    // Two heads on both sides: the layer value is the mean of the head values.
    ForwardResult t, st;
    t.layers = 1;
    st.layers = 2;
    t.heads = st.heads = 2;
    t.seq = st.seq = 2;
    t.attention = {1.0f, 0.0f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f};
    st.attention = {0.5f, 0.5f, 0.5f, 0.5f, 0.5f,  0.5f,  0.5f, 0.5f,   // layer 0
                    1.0f, 0.0f, 0.5f, 0.5f, 0.25f, 0.75f, 0.5f, 0.5f};  // layer 1
    const LossMatrix m = lossMatrix(t, st);
    QCOMPARE(m.studentHeads, 2);
    // Layer 1 head 0 equals teacher head 0; head 1: row 0 (.5,.5) vs (.25,.75).
    QVERIFY(std::abs(m.headAt(m.headKl, 0, 1, 0)) < kExact);
    const double kl = (0.5 * std::log(0.5 / 0.25) + 0.5 * std::log(0.5 / 0.75)) / 2;
    QVERIFY(std::abs(m.headAt(m.headKl, 0, 1, 1) - kl) < kFloat);
    QVERIFY(std::abs(m.headAt(m.headMse, 0, 1, 1) - 0.125 / 4) < kFloat);
    // Layer 0 head 0: teacher row 0 one-hot vs (.5, .5) → ln 2 on one of two rows.
    QVERIFY(std::abs(m.headAt(m.headKl, 0, 0, 0) - std::log(2.0) / 2) < kFloat);
    QVERIFY(std::abs(m.at(m.kl, 0, 0) - std::log(2.0) / 4) < kFloat);
    QVERIFY(std::abs(m.at(m.kl, 0, 1) - kl / 2) < kFloat);

    // One teacher head against two student heads: each student head is compared
    // with the teacher's (only) head, the layer value with the head averages.
    ForwardResult t1 = t;
    t1.heads = 1;
    t1.attention.resize(4);
    const LossMatrix d = lossMatrix(t1, st);
    QVERIFY(std::abs(d.headAt(d.headKl, 0, 1, 1) - (std::log(1.0 / 0.25)) / 2) <
            kFloat);  // (1, 0) vs (.25, .75) on row 0
    // Student layer 1 head average: row 0 (.625, .375), row 1 (.5, .5).
    QVERIFY(std::abs(d.at(d.kl, 0, 1) - std::log(1.0 / 0.625) / 2) < kFloat);
  }

  void bestMappingEqualsBruteForce() {
    std::mt19937 rng(3);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    for (int trial = 0; trial < 200; ++trial) {
      const int T = 1 + int(rng() % 6), S = 1 + int(rng() % 5);
      std::vector<double> loss(size_t(T) * S);
      for (auto& x : loss) x = u(rng);
      const auto dp = bestMonotoneMap(loss, T, S);
      double dpCost = 0.0;
      for (int s = 0; s < S; ++s) {
        QVERIFY(dp[s] >= 0 && dp[s] < T);
        if (s > 0) QVERIFY(dp[s] >= dp[s - 1]);
        dpCost += loss[size_t(dp[s]) * S + s];
      }
      // Enumerate every non-decreasing map.
      double best = 1e300;
      std::vector<int> cur(S);
      std::function<void(int, int, double)> rec = [&](int s, int lo, double acc) {
        if (s == S) {
          best = std::min(best, acc);
          return;
        }
        for (int t = lo; t < T; ++t) rec(s + 1, t, acc + loss[size_t(t) * S + s]);
      };
      rec(0, 0, 0.0);
      QVERIFY(std::abs(dpCost - best) < 1e-12);
    }
  }

  void perHead() {
    const int s = 4;
    std::vector<float> all;
    for (int h = 0; h < 3; ++h) {
      auto m = h == 1 ? uniform(s) : shifted(s, 0);
      all.insert(all.end(), m.begin(), m.end());
    }
    const auto e = headEntropies(all.data(), 1, 3, s);
    QCOMPARE(e.size(), size_t(3));
    QVERIFY(std::abs(e[0]) < kExact && std::abs(e[2]) < kExact);
    QVERIFY(std::abs(e[1] - std::log(4.0)) < kFloat);
  }
};

QTEST_APPLESS_MAIN(TestMetrics)
#include "test_metrics.moc"
