// Quantization formats: PyTorch's codes and scales where PyTorch has the
// method (fixtures from tests/tools/make_quant_fixtures.py), error bounds for
// every entry of the trait table, packing, k-means, binary and ternary rules,
// error statistics and invalid specs.
#include <QTest>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "core/io/npy.h"
#include "core/quant/quantize.h"
#include "tests/core/test_helpers.h"

using namespace attn;
using namespace attn::quant;

namespace {
constexpr double kRoundingSlack = 1e-6;      // relative slack on the half-step bound (float32 math)
constexpr double kMseMonotoneSlack = 1e-12;  // k-means: float32 levels, double error

std::vector<float> randomWeights(int64_t n, uint32_t seed, float sigma = 0.05f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, sigma);
  std::vector<float> w(static_cast<size_t>(n));
  for (auto& x : w) x = d(rng);
  return w;
}

// A spec of the sweeps below (their other fields as Spec{} has them).
Spec specOf(Method method, int bits, Granularity g, bool symmetric, int groupSize) {
  Spec s;
  s.method = method;
  s.bits = bits;
  s.granularity = g;
  s.symmetric = symmetric;
  s.groupSize = groupSize;
  return s;
}

std::vector<Granularity> granularities(const MethodTraits& t) {
  std::vector<Granularity> g = {Granularity::Tensor, Granularity::Channel};
  if (t.group) g.push_back(Granularity::Group);
  return g;
}

NpyArray load(const QString& name) {
  auto a = readNpy(test::dataDir() / "quant" / (name.toStdString() + ".npy"));
  if (!a) qFatal("%s", a.message().c_str());
  return *a;
}
}  // namespace

class TestQuant : public QObject {
  Q_OBJECT

 private slots:
  void sameCodesAsPyTorch_data() {
    QTest::addColumn<QString>("name");
    QTest::addColumn<bool>("symmetric");
    QTest::addColumn<int>("granularity");
    QTest::newRow("qint8 per tensor") << "qint8_tensor" << true << int(Granularity::Tensor);
    QTest::newRow("qint8 per channel") << "qint8_channel" << true << int(Granularity::Channel);
    QTest::newRow("quint8 affine per tensor")
        << "quint8_tensor" << false << int(Granularity::Tensor);
    QTest::newRow("quint8 affine per channel")
        << "quint8_channel" << false << int(Granularity::Channel);
  }

  void sameCodesAsPyTorch() {
    QFETCH(QString, name);
    QFETCH(bool, symmetric);
    QFETCH(int, granularity);
    const NpyArray w = load("weights");
    const NpyArray codes = load(name + "_codes"), scales = load(name + "_scales"),
                   zeros = load(name + "_zeros");
    const int64_t rows = w.shape[0], cols = w.shape[1];
    std::vector<float> wf(w.values.begin(), w.values.end());
    Spec s;
    s.bits = 8;
    s.symmetric = symmetric;
    s.granularity = Granularity(granularity);
    auto q = quantize(wf.data(), rows, cols, s);
    QVERIFY2(q.ok(), q.ok() ? "" : q.message().c_str());
    QCOMPARE(q->scales.size(), scales.values.size());
    for (size_t i = 0; i < scales.values.size(); ++i)
      QCOMPARE(q->scales[i], float(scales.values[i]));  // bit-exact float32 scales
    if (!symmetric) {
      QCOMPARE(q->zeros.size(), zeros.values.size());
      for (size_t i = 0; i < zeros.values.size(); ++i)
        QCOMPARE(int(q->zeros[i]), int(zeros.values[i]));
    }
    int mismatches = 0;
    for (int64_t i = 0; i < rows * cols; ++i) {
      const int ours = symmetric ? int(q->code(i)) - 128 : int(q->code(i));
      if (ours != int(codes.values[size_t(i)]) && ++mismatches <= 5)
        qWarning("code %lld: ours %d, torch %d (w = %.9g)", qlonglong(i), ours,
                 int(codes.values[size_t(i)]), double(wf[size_t(i)]));
    }
    QCOMPARE(mismatches, 0);
  }

  void everyFormatWithinItsBound() {
    const int64_t rows = 32, cols = 128;
    const auto w = randomWeights(rows * cols, 11);
    for (const MethodTraits& t : kMethods)
      for (Granularity g : granularities(t))
        for (int bits = t.minBits; bits <= t.maxBits; ++bits)
          for (bool sym : {true, false}) {
            if (t.method != Method::Uniform && !sym) continue;
            const Spec s = specOf(t.method, bits, g, sym, 32);
            const QString what = QString::fromStdString(describe(s));
            auto q = quantize(w.data(), rows, cols, s);
            QVERIFY2(q.ok(), qPrintable(what));
            const auto r = q->dequantize();
            const int64_t blocks = blockCount(s, rows, cols), len = rows * cols / blocks;
            QCOMPARE(int64_t(q->packed.size()), (rows * cols * bits + 7) / 8);
            for (int64_t i = 0; i < rows * cols; ++i) {
              const int64_t b = i / len;
              const double x = w[size_t(i)], y = r[size_t(i)], err = std::fabs(x - y);
              switch (t.method) {
                case Method::Uniform: {  // no clipping: within half a step
                  const double half = 0.5 * q->scales[size_t(b)] * (1 + kRoundingSlack);
                  QVERIFY2(err <= half, qPrintable(what + QString(" at %1: %2").arg(i).arg(err)));
                  break;
                }
                case Method::KMeans:  // the nearest level
                  for (int k = 0; k < (1 << bits); ++k)
                    QVERIFY2(err <= std::fabs(x - q->level(b, uint32_t(k))) + 1e-9,
                             qPrintable(what));
                  break;
                case Method::Log2:
                  if (y != 0.0) {
                    QVERIFY(std::signbit(x) == std::signbit(y));
                    const double e = std::log2(std::fabs(y));
                    QCOMPARE(e, std::round(e));  // a power of two
                    if (std::fabs(y) < std::ldexp(1.0, q->exponents[size_t(b)]))
                      QVERIFY2(std::fabs(std::log2(std::fabs(x)) - e) <= 0.5 + 1e-9,
                               qPrintable(what));
                  }
                  break;
                case Method::Binary:
                  QCOMPARE(std::fabs(y), double(q->scales[size_t(b)]));
                  QVERIFY(x >= 0 ? y > 0 : y < 0);
                  break;
                case Method::Ternary:
                  QVERIFY(y == 0 || std::fabs(y) == double(q->scales[size_t(b)]));
                  break;
              }
            }
            // Bits per weight as the header states: b + parameter bits / block size.
            const double params = t.method == Method::Uniform  ? (sym ? 32 : 40)
                                  : t.method == Method::KMeans ? 32.0 * (1 << bits)
                                  : t.method == Method::Log2   ? 8
                                                               : 32;
            const double expect = double(q->packed.size()) * 8 / double(rows * cols) + params / len;
            QVERIFY2(std::fabs(q->bitsPerWeight() - expect) < 1e-9, qPrintable(what));
          }
  }

  void fastEqualsReference() {
    // Odd sizes (vector tails), exact half-steps, and an outlier clipped far away.
    const int64_t rows = 12, cols = 100;
    auto w = randomWeights(rows * cols, 17);
    for (int j = 0; j < 20; ++j) w[size_t(j)] = (j - 10 + 0.5f) * (w[50] / 127.0f);
    w[333] = 40.0f;
    for (const MethodTraits& t : kMethods)
      for (Granularity g : granularities(t))
        for (int bits = t.minBits; bits <= t.maxBits; ++bits)
          for (int variant = 0; variant < (t.method == Method::Uniform ? 4 : 1); ++variant) {
            Spec s = specOf(t.method, bits, g, variant % 2 == 0, 20);
            s.clip = variant >= 2 ? Clip::Percentile : Clip::None;
            s.percentile = 90;
            auto a = quantize(w.data(), rows, cols, s), b = quantizeRef(w.data(), rows, cols, s);
            QVERIFY(a.ok() && b.ok());
            QVERIFY2(a->packed == b->packed, describe(s).c_str());
            QVERIFY2(a->scales == b->scales && a->zeros == b->zeros, describe(s).c_str());
            QVERIFY(a->codebook == b->codebook && a->exponents == b->exponents);
          }
  }

  void moreBitsLessError() {
    const auto w = randomWeights(64 * 96, 5);
    for (Method m : {Method::Uniform, Method::KMeans}) {
      double last = -1;
      for (int bits = 2; bits <= 8; ++bits) {
        Spec s;
        s.method = m;
        s.bits = bits;
        s.granularity = Granularity::Tensor;  // per row, 2^7 levels would fit 96 values exactly
        auto q = quantize(w.data(), 64, 96, s);
        QVERIFY(q.ok());
        const ErrorStats st = errorStats(w.data(), *q);
        QVERIFY2(st.sqnrDb > last, qPrintable(QString("%1 bits, method %2: %3 dB after %4 dB")
                                                  .arg(bits)
                                                  .arg(traits(m).name)
                                                  .arg(st.sqnrDb)
                                                  .arg(last)));
        last = st.sqnrDb;
      }
      QVERIFY(last > 35);  // 8 bits: about 6 dB per bit
    }
  }

  void packingRoundTrips() {
    std::mt19937 rng(3);
    for (int bits = 1; bits <= 8; ++bits)
      for (int n : {0, 1, 7, 8, 9, 1001}) {
        std::vector<uint32_t> codes(static_cast<size_t>(n));
        for (auto& c : codes) c = rng() & ((1u << bits) - 1);
        const auto p = packCodes(codes, bits);
        QCOMPARE(p.size(), size_t((n * bits + 7) / 8));
        QCOMPARE(unpackCodes(p, bits, n), codes);
      }
    // LSB first: codes 1, 2, 3 of 2 bits → 0b00'11'10'01.
    QCOMPARE(packCodes({1, 2, 3}, 2), (std::vector<uint8_t>{0x39}));
    QCOMPARE(packCodes({1, 0, 1, 1, 0, 0, 0, 0, 1}, 1), (std::vector<uint8_t>{0x0d, 0x01}));
  }

  void kmeansNeverIncreasesTheError() {
    for (uint32_t seed : {1u, 2u, 3u}) {
      // Heavy-tailed weights: a mixture, so Lloyd needs several iterations.
      auto w = randomWeights(48 * 256, seed);
      const auto tail = randomWeights(48 * 256, seed + 100, 0.3f);
      for (size_t i = 0; i < w.size(); i += 7) w[i] = tail[i];
      for (int bits : {2, 4}) {
        Spec s;
        s.method = Method::KMeans;
        s.bits = bits;
        s.granularity = Granularity::Tensor;
        std::vector<double> history;
        auto q = quantize(w.data(), 48, 256, s, nullptr, &history);
        QVERIFY(q.ok());
        QVERIFY(history.size() >= 2);
        for (size_t i = 1; i < history.size(); ++i)
          QVERIFY2(
              history[i] <= history[i - 1] * (1 + kMseMonotoneSlack),
              qPrintable(
                  QString("iteration %1: %2 > %3").arg(i).arg(history[i]).arg(history[i - 1])));
        QVERIFY(q->iterations < kKMeansMaxIterations);  // converged: no assignment changed
        QVERIFY(std::is_sorted(q->codebook.begin(), q->codebook.end()));
        // The reported error is the final one.
        QVERIFY(std::fabs(errorStats(w.data(), *q).mse - history.back()) <=
                1e-9 * history.back() + 1e-15);
      }
    }
    // Exactly 2^b distinct values are reproduced exactly.
    std::vector<float> v;
    for (int i = 0; i < 400; ++i) v.push_back(float(i % 4) * 0.25f - 0.3f);
    Spec s;
    s.method = Method::KMeans;
    s.bits = 2;
    s.granularity = Granularity::Tensor;
    auto q = quantize(v.data(), 1, 400, s);
    QVERIFY(q.ok());
    QCOMPARE(q->dequantize(), v);
  }

  void binaryScaleIsL2Optimal() {
    const auto w = randomWeights(8 * 64, 9);
    Spec s;
    s.method = Method::Binary;
    s.bits = 1;
    s.granularity = Granularity::Channel;
    auto q = quantize(w.data(), 8, 64, s);
    QVERIFY(q.ok());
    for (int r = 0; r < 8; ++r) {
      double mean = 0;
      for (int j = 0; j < 64; ++j) mean += std::fabs(w[size_t(r) * 64 + j]);
      QVERIFY(std::fabs(q->scales[size_t(r)] - mean / 64) < 1e-7);
      // Σ (w − a·sign w)² is smallest at a = α: try α·(1 ± 1 %).
      auto err = [&](double a) {
        double e = 0;
        for (int j = 0; j < 64; ++j) {
          const double x = w[size_t(r) * 64 + j];
          e += std::pow(x - a * (x >= 0 ? 1 : -1), 2);
        }
        return e;
      };
      const double a = q->scales[size_t(r)];
      QVERIFY(err(a) < err(a * 1.01) && err(a) < err(a * 0.99));
    }
  }

  void ternaryByHand() {
    // mean|w| = 3/6 = 0.5 → Δ = 0.35; kept: 1.0, −0.6, 0.4, −0.5 → α = 2.5/4.
    const std::vector<float> w = {1.0f, -0.6f, 0.3f, 0.4f, -0.2f, -0.5f};
    Spec s;
    s.method = Method::Ternary;
    s.bits = 2;
    s.granularity = Granularity::Tensor;
    auto q = quantize(w.data(), 1, 6, s);
    QVERIFY(q.ok());
    QVERIFY(std::fabs(q->scales[0] - 0.625f) < 1e-7);
    const std::vector<uint32_t> expect = {1, 2, 0, 1, 0, 2};
    for (int i = 0; i < 6; ++i) QCOMPARE(q->code(i), expect[size_t(i)]);
  }

  void log2ByHand() {
    // e_max = round(log2 1.0) = 0; 3 bits → magnitudes 1, 1/2, 1/4, below 2^(−2.5) → 0.
    const std::vector<float> w = {1.0f, 0.5f, 0.3f, -0.24f, 0.01f, -0.7f};
    Spec s;
    s.method = Method::Log2;
    s.bits = 3;
    s.granularity = Granularity::Tensor;
    auto q = quantize(w.data(), 1, 6, s);
    QVERIFY(q.ok());
    QCOMPARE(q->dequantize(), (std::vector<float>{1.0f, 0.5f, 0.25f, -0.25f, 0.0f, -0.5f}));
  }

  void clipping() {
    // Laplace-distributed rows: an MSE-optimal range is well inside max|w|.
    std::mt19937 rng(21);
    std::exponential_distribution<float> e(20.0f);
    std::vector<float> w(4 * 1024);
    for (auto& x : w) x = (rng() & 1 ? 1.0f : -1.0f) * e(rng);
    Spec s;
    s.bits = 4;
    s.granularity = Granularity::Channel;
    auto plain = quantize(w.data(), 4, 1024, s);
    s.clip = Clip::Mse;
    auto mse = quantize(w.data(), 4, 1024, s);
    QVERIFY(plain.ok() && mse.ok());
    const double e0 = errorStats(w.data(), *plain).mse, e1 = errorStats(w.data(), *mse).mse;
    QVERIFY2(e1 < 0.9 * e0, qPrintable(QString("%1 vs %2").arg(e1).arg(e0)));
    for (int r = 0; r < 4; ++r) QVERIFY(mse->scales[size_t(r)] < plain->scales[size_t(r)]);
    // Percentile: the range of the row ignores its largest 1 %; an outlier saturates.
    w[17] = 2.0f;
    s.clip = Clip::Percentile;
    s.percentile = 99.0;
    auto pct = quantize(w.data(), 4, 1024, s);
    QVERIFY(pct.ok());
    QVERIFY(pct->scales[0] < 2.0f / 7 / 4);
    QCOMPARE(pct->code(17), 15u);  // q = 2^(4−1) − 1 = 7, stored q + 8
  }

  void errorStatisticsByHand() {
    const std::vector<float> w = {0.5f, -0.25f, 0.0f, 1.0f};
    Spec s;
    s.bits = 2;  // symmetric 2-bit: q ∈ {−1, 0, 1}, s = 1.0
    s.granularity = Granularity::Tensor;
    auto q = quantize(w.data(), 1, 4, s);
    QVERIFY(q.ok());
    QCOMPARE(q->scales[0], 1.0f);
    // 0.5 → round-half-even(0.5) = 0; −0.25 → 0; 0 → 0; 1 → 1.
    QCOMPARE(q->dequantize(), (std::vector<float>{0.0f, 0.0f, 0.0f, 1.0f}));
    const ErrorStats st = errorStats(w.data(), *q, 4);
    QVERIFY(std::fabs(st.mse - (0.25 + 0.0625) / 4) < 1e-12);
    QVERIFY(std::fabs(st.sqnrDb - 10 * std::log10((0.25 + 0.0625 + 1) / (0.25 + 0.0625))) < 1e-9);
    QCOMPARE(st.maxAbsError, 0.5);
    QCOMPARE(st.bytesBefore, int64_t(16));
    QCOMPARE(st.bytesAfter, int64_t(1 + 4));  // one byte of codes, one float32 scale
    QCOMPARE(st.levels, (std::vector<float>{-1.0f, 0.0f, 1.0f}));
    int64_t total = 0;
    for (auto c : st.weights.counts) total += c;
    QCOMPARE(total, int64_t(4));
    QCOMPARE(st.weights.counts,
             (std::vector<int64_t>{2, 0, 1, 1}));  // bins of 0.3125 over [−.25, 1]
  }

  void invalidSpecsAreErrors_data() {
    QTest::addColumn<QString>("method");
    QTest::addColumn<int>("bits");
    QTest::addColumn<QString>("granularity");
    QTest::addColumn<QString>("message");
    QTest::newRow("0 bits") << "uniform" << 0 << "channel"
                            << "takes 2–8 bits, not 0";
    QTest::newRow("9 bits") << "uniform" << 9 << "channel"
                            << "takes 2–8 bits, not 9";
    QTest::newRow("binary 2 bits") << "binary" << 2 << "tensor"
                                   << "takes 1 bits, not 2";
    QTest::newRow("group 48") << "uniform" << 4 << "group:48"
                              << "group size 48 does not divide the input dimension 64";
    QTest::newRow("group kmeans") << "kmeans" << 4 << "group:32"
                                  << "per tensor or per channel";
    QTest::newRow("group 0") << "uniform" << 4 << "group:0"
                             << "is not a positive integer";
    QTest::newRow("bad granularity") << "uniform" << 4 << "row"
                                     << "unknown granularity 'row'";
    QTest::newRow("bad method") << "float4" << 4 << "tensor"
                                << "unknown quantization method 'float4'";
  }

  void invalidSpecsAreErrors() {
    QFETCH(QString, method);
    QFETCH(int, bits);
    QFETCH(QString, granularity);
    QFETCH(QString, message);
    const auto w = randomWeights(4 * 64, 1);
    std::string error;
    auto m = parseMethod(method.toStdString());
    if (!m) {
      error = m.message();
    } else {
      Spec s;
      s.method = *m;
      s.bits = bits;
      auto sp = parseGranularity(granularity.toStdString(), s);
      if (!sp) {
        error = sp.message();
      } else {
        auto q = quantize(w.data(), 4, 64, *sp);
        QVERIFY(!q.ok());
        error = q.message();
      }
    }
    QVERIFY2(QString::fromStdString(error).contains(message), error.c_str());
  }

  void nonFiniteWeightsAreErrors() {
    std::vector<float> w = {0.1f, NAN, 0.2f, 0.3f};
    auto q = quantize(w.data(), 1, 4, Spec{});
    QVERIFY(!q.ok());
    QVERIFY(QString::fromStdString(q.message()).contains("NaN/Inf"));
    // NaN, +Inf and −Inf found wherever they are: inside a run of eight (the SIMD
    // check) and in a row's last five (the scalar tail), per tensor and per
    // channel, with and without a pool; FLT_MAX is finite and quantizes.
    ThreadPool pool(2);
    const float kNonFinite[] = {NAN, INFINITY, -INFINITY};
    for (const bool perChannel : {false, true})
      for (const int64_t at : {int64_t(0), int64_t(13), int64_t(35), int64_t(37 + 20), int64_t(3 * 37 - 1)})
        for (const float bad : kNonFinite)
          for (ThreadPool* p : {static_cast<ThreadPool*>(nullptr), &pool}) {
            std::vector<float> v = randomWeights(3 * 37, 5);
            v[size_t(at)] = bad;
            Spec s;
            if (perChannel) s.granularity = Granularity::Channel;
            auto r = quantize(v.data(), 3, 37, s, p);
            QVERIFY2(!r.ok(), qPrintable(QString("%1 at %2").arg(double(bad)).arg(at)));
            QVERIFY2(QString::fromStdString(r.message()).contains("weight " + QString::number(at)),
                     r.message().c_str());
          }
    std::vector<float> v = randomWeights(3 * 37, 5);
    v[13] = FLT_MAX;
    v[35] = -FLT_MAX;
    QVERIFY(quantize(v.data(), 3, 37, Spec{}).ok());
  }

  void parallelEqualsSerial() {
    const auto w = randomWeights(64 * 128, 4);
    ThreadPool pool(2);
    for (const MethodTraits& t : kMethods) {
      Spec s;
      s.method = t.method;
      s.bits = std::max(t.minBits, std::min(t.maxBits, 4));
      auto a = quantize(w.data(), 64, 128, s), b = quantize(w.data(), 64, 128, s, &pool);
      QVERIFY(a.ok() && b.ok());
      QCOMPARE(a->packed, b->packed);
      QCOMPARE(a->scales, b->scales);
      QCOMPARE(a->codebook, b->codebook);
      // Error statistics in chunks: the same numbers (the chunks do not depend on
      // the pool and are merged in order).
      const ErrorStats x = errorStats(w.data(), *a, 32), y = errorStats(w.data(), *a, 32, &pool);
      QCOMPARE(x.weights.counts, y.weights.counts);
      QCOMPARE(x.errors.counts, y.errors.counts);
      QCOMPARE(x.maxAbsError, y.maxAbsError);
      QCOMPARE(x.levels, y.levels);
      QCOMPARE(x.mse, y.mse);
    }
    // Many chunks (per tensor: 65536 values each; per channel: whole rows), on one,
    // two and five threads: bit for bit the same sums.
    const auto many = randomWeights(301 * 1000, 3);
    for (Granularity g : {Granularity::Tensor, Granularity::Channel}) {
      Spec s;
      s.bits = 4;
      s.granularity = g;
      auto q = quantize(many.data(), 301, 1000, s, &pool);
      QVERIFY(q.ok());
      ThreadPool five(5);
      const ErrorStats one = errorStats(many.data(), *q, 0), two = errorStats(many.data(), *q, 0, &pool),
                       fiveStats = errorStats(many.data(), *q, 0, &five);
      QCOMPARE(one.mse, two.mse);
      QCOMPARE(one.mse, fiveStats.mse);
      QCOMPARE(one.sqnrDb, fiveStats.sqnrDb);
    }
    // Streams long enough to be packed in parallel chunks: the same bytes, for code
    // widths that fill bytes and that do not (301 · 384 codes: no multiple of the chunks).
    const auto big = randomWeights(301 * 384, 5);
    for (int bits : {2, 3, 4, 5, 7}) {
      Spec s;
      s.bits = bits;
      auto a = quantize(big.data(), 301, 384, s), b = quantize(big.data(), 301, 384, s, &pool);
      QVERIFY(a.ok() && b.ok());
      QCOMPARE(a->packed, b->packed);
      QVERIFY(a->dequantize() == b->dequantize());
    }
  }

  // quantizeInto (the workspace's re-quantizing) against quantize() then
  // dequantizeInto: the same tensor, values bit for bit (memcmp: a −0 for a +0 would
  // fail) and the same statistics — every method (the non-uniform ones and MSE
  // clipping take the two passes), every width, per tensor in one and in several
  // chunks (an odd count: a last chunk that ends inside a byte), per channel with rows
  // of a multiple of 8 (one pass) and not (two passes), groups; into another buffer
  // and in place; on one thread, two and five.
  void quantizeIntoEqualsQuantizeThenDequantize() {
    ThreadPool pool(2), five(5);
    struct Shape {
      int64_t rows, cols;
    };
    const Shape shapes[] = {{257, 259}, {96, 256}, {301, 384}, {7, 40}, {37, 41}};
    for (const Shape& sh : shapes) {
      const int64_t n = sh.rows * sh.cols;
      const auto w = randomWeights(n, uint32_t(n));
      for (const MethodTraits& t : kMethods)
        for (int bits : {1, 2, 3, 4, 5, 8})
          for (Granularity g : granularities(t))
            for (bool symmetric : {true, false}) {
              if ((!symmetric && t.method != Method::Uniform) || bits < t.minBits || bits > t.maxBits)
                continue;
              if (t.method == Method::KMeans && (bits > 3 || n > 40000)) continue;  // slow, nothing new
              const Spec s = specOf(t.method, bits, g, symmetric, 8);
              if (g == Granularity::Group && sh.cols % 8 != 0) continue;
              auto want = quantize(w.data(), sh.rows, sh.cols, s, &pool);
              QVERIFY2(want.ok(), want.ok() ? "" : want.message().c_str());
              std::vector<float> deq(static_cast<size_t>(n));
              const ErrorStats wantStats = dequantizeInto(w.data(), *want, deq.data(), &pool);
              for (ThreadPool* p : {static_cast<ThreadPool*>(nullptr), &pool, &five})
                for (bool inPlace : {false, true}) {
                  std::vector<float> src = w, into(size_t(n), std::numeric_limits<float>::quiet_NaN());
                  float* out = inPlace ? src.data() : into.data();
                  ErrorStats st;
                  auto got = quantizeInto(src.data(), sh.rows, sh.cols, s, out, st, p);
                  const QString what = QString("%1x%2 %3 %4-bit g%5 sym %6 in place %7")
                                           .arg(sh.rows).arg(sh.cols).arg(t.name).arg(bits)
                                           .arg(int(g)).arg(symmetric).arg(inPlace);
                  QVERIFY2(got.ok(), qPrintable(what));
                  QVERIFY2(got->packed == want->packed, qPrintable(what));
                  QVERIFY2(got->scales == want->scales, qPrintable(what));
                  QVERIFY2(got->zeros == want->zeros, qPrintable(what));
                  QVERIFY2(got->codebook == want->codebook, qPrintable(what));
                  QVERIFY2(got->exponents == want->exponents, qPrintable(what));
                  QVERIFY2(std::memcmp(out, deq.data(), size_t(n) * sizeof(float)) == 0, qPrintable(what));
                  if (!inPlace) QVERIFY(src == w);
                  QVERIFY2(st.mse == wantStats.mse, qPrintable(what));
                  QVERIFY2(st.sqnrDb == wantStats.sqnrDb, qPrintable(what));
                  QVERIFY2(st.maxAbsError == wantStats.maxAbsError, qPrintable(what));
                  QVERIFY2(st.levels == wantStats.levels, qPrintable(what));
                  QCOMPARE(st.bytesAfter, wantStats.bytesAfter);
                }
            }
    }
    // NaN / ±Inf: the error quantize() gives (the first bad weight), per tensor in
    // the second chunk and per channel in a later row, in place and not.
    for (const Shape& sh : {Shape{257, 259}, Shape{96, 256}})
      for (Granularity g : {Granularity::Tensor, Granularity::Channel})
        for (bool inPlace : {false, true}) {
          std::vector<float> v = randomWeights(sh.rows * sh.cols, 2);
          v[size_t(sh.rows * sh.cols - 300)] = -INFINITY;
          v[size_t(sh.rows * sh.cols - 301)] = NAN;
          Spec s;
          s.granularity = g;
          std::vector<float> into(v.size());
          ErrorStats st;
          auto r = quantizeInto(v.data(), sh.rows, sh.cols, s, inPlace ? v.data() : into.data(), st,
                                &pool);
          QVERIFY(!r.ok());
          const QString want = "weight " + QString::number(sh.rows * sh.cols - 301) + " is nan";
          QVERIFY2(QString::fromStdString(r.message()).contains(want), r.message().c_str());
        }
    // In place, a row whose finite range overflows (±3e38: an infinite affine scale)
    // dequantizes to non-finite values; the error still names the weight that was
    // NaN (and quantize()'s message), not one of those.
    {
      std::vector<float> v = randomWeights(96 * 256, 4);
      v[0] = 3e38f;
      v[1] = -3e38f;
      v[size_t(90 * 256 + 7)] = NAN;
      Spec s;
      s.symmetric = false;
      auto want = quantize(v.data(), 96, 256, s);
      QVERIFY(!want.ok());
      ErrorStats st;
      auto got = quantizeInto(v.data(), 96, 256, s, v.data(), st, &pool);
      QVERIFY(!got.ok());
      QCOMPARE(got.message(), want.message());
      QVERIFY2(QString::fromStdString(got.message()).contains("weight " + QString::number(90 * 256 + 7)),
               got.message().c_str());
    }
  }

  // The one-pass path the compression workspace uses: the same values as
  // dequantize() and the same numbers as errorStats, bit for bit — for every
  // method (uniform symmetric and affine), bit widths that do and do not fill bytes, on one thread and on the pool
  // (chunks of a size that is no multiple of the 4096-value pieces or the 8 lanes;
  // rows of 37 per channel: chunks of whole rows, 1771 · 37 values, so the second
  // starts at an odd code, inside a byte of 2- and 4-bit codes).
  void dequantizeInPlaceEqualsDequantizeAndStats() {
    ThreadPool pool(2), five(5);
    for (const auto& [rows, cols] : {std::pair<int64_t, int64_t>{301, 384}, {1801, 37}}) {
    const auto w = randomWeights(rows * cols, 9);  // both over one chunk's 65536 values
    for (const MethodTraits& t : kMethods)
      for (int bits : {1, 2, 3, 4, 5, 6, 7, 8})
        for (Granularity g : granularities(t))
        for (bool symmetric : {true, false}) {
          if ((!symmetric && t.method != Method::Uniform) || bits < t.minBits || bits > t.maxBits)
            continue;
          if (g == Granularity::Group && cols % 128 != 0) continue;
          const Spec s = specOf(t.method, bits, g, symmetric, 128);
          if (s.method == Method::KMeans && s.bits > 4) continue;  // slow, nothing new
          auto q = quantize(w.data(), rows, cols, s, &pool);
          QVERIFY2(q.ok(), q.ok() ? "" : q.message().c_str());
          const std::vector<float> deq = q->dequantize();
          const ErrorStats want = errorStats(w.data(), *q, deq, 0, &pool);
          for (ThreadPool* p : {static_cast<ThreadPool*>(nullptr), &pool, &five}) {
            std::vector<float> got = w;
            const ErrorStats st = dequantizeInPlace(got.data(), *q, p);
            QVERIFY(got == deq);
            const ErrorStats ref = p == &pool ? want : errorStats(w.data(), *q, deq, 0, p);
            QCOMPARE(st.mse, ref.mse);
            QCOMPARE(st.sqnrDb, ref.sqnrDb);
            QCOMPARE(st.maxAbsError, ref.maxAbsError);
            QCOMPARE(st.bytesAfter, ref.bytesAfter);
            QCOMPARE(st.bitsPerWeight, ref.bitsPerWeight);
            QCOMPARE(st.levels, ref.levels);
            QVERIFY(st.weights.counts.empty() && st.errors.counts.empty());
            // Into another buffer: every value written (none of the NaNs left), the
            // same statistics, the source untouched.
            std::vector<float> into(w.size(), std::numeric_limits<float>::quiet_NaN());
            const std::vector<float> source = w;
            const ErrorStats st2 = dequantizeInto(source.data(), *q, into.data(), p);
            QVERIFY(into == deq);
            QVERIFY(source == w);
            QCOMPARE(st2.mse, st.mse);
            QCOMPARE(st2.maxAbsError, st.maxAbsError);
          }
          QVERIFY(want.mse > 0.0);
        }
    }
  }
};

QTEST_GUILESS_MAIN(TestQuant)
#include "test_quant.moc"
