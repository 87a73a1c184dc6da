// Attention metrics on maps whose values are known in closed form.
#include <QTest>
#include <cmath>

#include "core/attention/metrics.h"

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
