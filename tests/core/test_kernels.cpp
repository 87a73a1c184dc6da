// The fast linear kernel against its plain reference (DESIGN rule 8), over
// shapes that hit every edge: rows not a multiple of the 6-row tile, columns
// not a multiple of 16, K not a multiple of 8 or of the 256 block, both weight
// layouts, with and without bias, one and two threads.
#include <QTest>
#include <cstdlib>
#include <sys/resource.h>
#include <random>
#include <thread>
#include <stdexcept>

#include "core/kernels/gemm.h"
#include "core/util/memory.h"
#include "tests/core/test_helpers.h"

using namespace attn;

namespace {
// Relative to sqrt(K): float32 accumulation of K products of N(0,1) values.
constexpr double kRelTol = 2e-6;
}  // namespace

class TestKernels : public QObject {
  Q_OBJECT

 private slots:
  void freedMemoryIsReusedWithoutPageFaults() {
    // keepFreedMemoryForReuse (called first in the app's and the CLI's main): a
    // freed 9 MiB buffer (one BERT-base FFN matrix) is served again from the heap,
    // so touching its replacement costs no page faults. glibc's defaults hand it
    // back to the kernel: every 4 KiB page faults again (2304 of them). This
    // setting was once a no-op for a missing include, unnoticed: hence this test.
#if defined(__SANITIZE_ADDRESS__)
    QSKIP("AddressSanitizer replaces malloc");
#else
    const size_t n = size_t(9) << 20;  // keepFreedMemoryForReuse: called in main() below
    auto faults = [] {
      rusage u{};
      getrusage(RUSAGE_SELF, &u);
      return long(u.ru_minflt);
    };
    auto touch = [&] {
      auto* p = static_cast<volatile char*>(std::malloc(n));
      QVERIFY(p != nullptr);
      for (size_t i = 0; i < n; i += 4096) p[i] = char(i);
      std::free(const_cast<char*>(p));
    };
    touch();
    const long before = faults();
    for (int i = 0; i < 4; ++i) touch();
    const long again = faults() - before;
    QVERIFY2(again < 64, qPrintable(QString("%1 page faults for 4 x 9 MiB reused").arg(again)));
    // Past glibc's mmap threshold and a thread arena's 64 MiB heaps: 160 MiB (the
    // attention maps of BERT-base at 512 tokens are 151 MB), allocated on a new
    // thread each time, as the explorer's jobs run. Mapped afresh, each round
    // faults 40960 times (~0.4 s on this VM).
    const size_t big = size_t(160) << 20;
    auto touchOnThread = [&] {
      std::thread t([&] {
        auto* p = static_cast<volatile char*>(std::malloc(big));
        if (p == nullptr) return;
        for (size_t i = 0; i < big; i += 4096) p[i] = char(i);
        std::free(const_cast<char*>(p));
      });
      t.join();
    };
    touchOnThread();
    const long beforeBig = faults();
    for (int i = 0; i < 4; ++i) touchOnThread();
    const long againBig = faults() - beforeBig;
    QVERIFY2(againBig < 64, qPrintable(QString("%1 page faults for 4 x 160 MiB reused").arg(againBig)));
    // prefaultHeap: memory touched once ahead serves new buffers without faults.
    attn::prefaultHeap(size_t(400) << 20);
    const long beforeNew = faults();
    std::vector<volatile char*> held;
    for (int i = 0; i < 30; ++i) {  // 30 x 9 MiB held at once: 270 MiB of new buffers
      auto* p = static_cast<volatile char*>(std::malloc(n));
      QVERIFY(p != nullptr);
      for (size_t j = 0; j < n; j += 4096) p[j] = char(j);
      held.push_back(p);
    }
    const long fresh = faults() - beforeNew;
    for (auto* p : held) std::free(const_cast<char*>(p));
    QVERIFY2(fresh < 64, qPrintable(QString("%1 page faults for 270 MiB after prefaultHeap").arg(fresh)));
#endif
  }

  void linearMatchesReference_data() {
    QTest::addColumn<int>("m");
    QTest::addColumn<int>("n");
    QTest::addColumn<int>("k");
    QTest::addColumn<bool>("inOut");
    QTest::addColumn<bool>("bias");
    QTest::addColumn<int>("threads");
    // Around both kernels' tiles (6 × 16 AVX2, 8 × 32 AVX-512) and K blocks (256).
    const int shapes[][3] = {{1, 1, 1},      {5, 7, 3},     {6, 16, 8},    {7, 17, 9},
                             {13, 50, 300},  {12, 32, 256}, {8, 32, 8},    {9, 33, 257},
                             {15, 31, 7},    {16, 64, 512}, {23, 95, 40},  {37, 100, 513},
                             {128, 96, 32},  {3, 768, 20},  {5, 9, 0},     {4, 9, 0}};
    // (the last two: no inputs, Y = bias, or zeros)
    for (const auto& s : shapes)
      for (bool io : {false, true})
        for (int t : {1, 2})
          QTest::newRow(qPrintable(QString("%1x%2x%3 %4 t%5")
                                       .arg(s[0])
                                       .arg(s[1])
                                       .arg(s[2])
                                       .arg(io ? "inOut" : "linear")
                                       .arg(t)))
              << s[0] << s[1] << s[2] << io << (s[0] % 2 == 1) << t;
  }

  void linearMatchesReference() {
    QFETCH(int, m);
    QFETCH(int, n);
    QFETCH(int, k);
    QFETCH(bool, inOut);
    QFETCH(bool, bias);
    QFETCH(int, threads);
    std::mt19937 rng(static_cast<uint32_t>(m * 1000003 + n * 1009 + k));
    std::normal_distribution<float> d;
    std::vector<float> x(size_t(m) * k), w(size_t(n) * k), b(n), want(size_t(m) * n),
        got(size_t(m) * n, 12345.0f);
    for (auto* v : {&x, &w, &b})
      for (auto& e : *v) e = d(rng);
    GemmArgs g{m, n, k, x.data(), w.data(), inOut, bias ? b.data() : nullptr, want.data()};
    linearRef(g);
    g.y = got.data();
    ThreadPool pool(threads);
    linearFast(g, &pool);
    ATTN_CHECK_CLOSE(got.data(), want.data(), got.size(), kRelTol * std::sqrt(double(k)) * 4,
                     linearKernelName());
  }

  void poolRunsEveryTaskOnce() {
    ThreadPool pool(2);
    for (int round = 0; round < 200; ++round) {
      std::vector<std::atomic<int>> hits(37);
      pool.run(37, [&](int64_t t) { hits[t].fetch_add(1); });
      for (auto& h : hits) QCOMPARE(h.load(), 1);
    }
    std::vector<int> seen(100, 0);
    pool.chunks(100, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) seen[i] += 1;
    });
    for (int s : seen) QCOMPARE(s, 1);
  }

  void poolRethrowsAndStaysUsable() {
    ThreadPool pool(2);
    for (int round = 0; round < 50; ++round) {
      bool caught = false;
      try {
        pool.run(64, [&](int64_t t) {
          if (t == round % 64) throw std::runtime_error("task failed");
        });
      } catch (const std::runtime_error& e) {
        caught = std::string(e.what()) == "task failed";
      }
      QVERIFY(caught);
      std::atomic<int> count{0};
      pool.run(10, [&](int64_t) { count.fetch_add(1); });
      QCOMPARE(count.load(), 10);
    }
    // A nested call from inside a task runs serially instead of deadlocking.
    std::atomic<int> inner{0};
    pool.run(4, [&](int64_t) { pool.run(3, [&](int64_t) { inner.fetch_add(1); }); });
    QCOMPARE(inner.load(), 12);
  }
};

// keepFreedMemoryForReuse before QTest starts its watchdog thread, as the app's
// and the CLI's main() call it before any thread: glibc fixes the arena limit
// when a second thread first allocates.
int main(int argc, char** argv) {
  attn::keepFreedMemoryForReuse();
  TestKernels tc;
  QTEST_SET_MAIN_SOURCE_PATH
  return QTest::qExec(&tc, argc, argv);
}
#include "test_kernels.moc"
