// Google Benchmark for the engine's kernels:
//   build/release/core/bench/attn_kernels_bench [--benchmark_filter=...]
// Linear layers at BERT-base shapes (our packed kernel vs Eigen's GEMM) and a
// whole forward pass with every attention map captured.
#include <benchmark/benchmark.h>

#include <Eigen/Core>
#include <random>
#include <vector>

#include "core/kernels/gemm.h"
#include "core/model/model.h"

namespace {
using namespace attn;

std::vector<float> randomVector(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 0.02f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// Args: M (tokens), N (outputs), K (inputs), threads.
void BM_LinearFast(benchmark::State& st) {
  const int64_t m = st.range(0), n = st.range(1), k = st.range(2);
  const auto x = randomVector(m * k, 1), w = randomVector(n * k, 2), b = randomVector(n, 3);
  std::vector<float> y(m * n);
  ThreadPool pool(static_cast<int>(st.range(3)));
  GemmArgs g{m, n, k, x.data(), w.data(), false, b.data(), y.data()};
  for (auto _ : st) {
    linearFast(g, &pool);
    benchmark::DoNotOptimize(y.data());
  }
  st.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * m * n * k, benchmark::Counter::kIsIterationInvariantRate);
  st.SetLabel(linearKernelName());
}
BENCHMARK(BM_LinearFast)
    ->Args({128, 768, 768, 1})
    ->Args({128, 3072, 768, 1})
    ->Args({128, 768, 3072, 1})
    ->Args({128, 768, 768, 2})
    ->Args({128, 3072, 768, 2})
    ->Args({128, 768, 3072, 2})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_LinearEigen(benchmark::State& st) {
  using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const int64_t m = st.range(0), n = st.range(1), k = st.range(2);
  const auto xv = randomVector(m * k, 1), wv = randomVector(n * k, 2);
  const Eigen::Map<const Mat> x(xv.data(), m, k), w(wv.data(), n, k);
  Mat y(m, n);
  for (auto _ : st) {
    y.noalias() = x * w.transpose();
    benchmark::DoNotOptimize(y.data());
  }
  st.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * m * n * k, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_LinearEigen)
    ->Args({128, 768, 768})
    ->Args({128, 3072, 768})
    ->Args({128, 768, 3072})
    ->Unit(benchmark::kMillisecond);

void BM_LinearRef(benchmark::State& st) {  // the definition, for scale
  const int64_t m = 32, n = 256, k = 256;
  const auto x = randomVector(m * k, 1), w = randomVector(n * k, 2), b = randomVector(n, 3);
  std::vector<float> y(m * n);
  GemmArgs g{m, n, k, x.data(), w.data(), false, b.data(), y.data()};
  for (auto _ : st) {
    linearRef(g);
    benchmark::DoNotOptimize(y.data());
  }
  st.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * m * n * k, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_LinearRef)->Unit(benchmark::kMillisecond);

// Args: sequence length, threads.
void BM_ForwardBertBase(benchmark::State& st) {
  static auto model = syntheticModel("bert-base");
  const auto& m = **model;
  std::vector<int32_t> ids(st.range(0));
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>((i * 7919) % 30522);
  ThreadPool pool(static_cast<int>(st.range(1)));
  ForwardOptions opt;
  opt.pool = &pool;
  for (auto _ : st) {
    auto r = forward(m.config, m.weights, ids, {}, opt);
    benchmark::DoNotOptimize(r.ok());
  }
}
BENCHMARK(BM_ForwardBertBase)
    ->Args({128, 1})
    ->Args({128, 2})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(2.0);
}  // namespace

BENCHMARK_MAIN();
