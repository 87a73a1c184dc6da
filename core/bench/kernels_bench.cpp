// Google Benchmark for the engine's kernels:
//   build/release/core/bench/attn_kernels_bench [--benchmark_filter=...]
// Linear layers at BERT-base shapes (our packed kernel vs Eigen's GEMM) and a
// whole forward pass with every attention map captured.
#include <benchmark/benchmark.h>

#include <Eigen/Core>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <vector>

#include "core/attention/compare.h"
#include "core/compress/evaluate.h"
#include "core/compress/plan.h"
#include "core/distill/init.h"
#include "core/distill/trainer.h"
#include "core/kernels/gemm.h"
#include "core/model/model.h"
#include "core/quant/quantize.h"
#include "core/sparse/attention_sparsity.h"
#include "core/sparse/prune.h"
#include "core/util/memory.h"

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

// As a forward pass meets them: every call a different W (40 matrices, 377 MB
// at 768 × 3072, far more than the caches), so W streams from memory.
// Args: M, N, K, threads.
void BM_LinearColdWeights(benchmark::State& st) {
  const int64_t m = st.range(0), n = st.range(1), k = st.range(2);
  constexpr int kMatrices = 40;
  const auto x = randomVector(m * k, 1), b = randomVector(n, 3);
  std::vector<std::vector<float>> w;
  for (int i = 0; i < kMatrices; ++i) w.push_back(randomVector(n * k, 4 + i));
  std::vector<float> y(m * n);
  ThreadPool pool(static_cast<int>(st.range(3)));
  int i = 0;
  for (auto _ : st) {
    GemmArgs g{m, n, k, x.data(), w[size_t(i++ % kMatrices)].data(), false, b.data(), y.data()};
    linearFast(g, &pool);
    benchmark::DoNotOptimize(y.data());
  }
  st.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * m * n * k, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_LinearColdWeights)
    ->Args({128, 3072, 768, 1})
    ->Args({128, 768, 3072, 1})
    ->Args({128, 3072, 768, 2})
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

// The synthetic BERT-base model and token ids 0, 7919, … (mod the vocabulary).
// ATTN_BENCH_FILE=DIR reads a BERT-base checkpoint instead (tests/tools/make_bench_model.py):
// weights in the file's mapped pages, as the program has them, not in the heap.
const Model& bertBase() {
  static const auto model = [] {
    const char* dir = std::getenv("ATTN_BENCH_FILE");
    auto m = dir != nullptr && *dir != 0 ? loadModel(dir) : syntheticModel("bert-base");
    if (!m) {
      std::fprintf(stderr, "%s\n", m.message().c_str());
      std::exit(1);
    }
    return *m;
  }();
  return *model;
}
std::vector<int32_t> benchIds(int64_t n) {
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>((i * 7919) % 30522);
  return ids;
}

// Args: sequence length, threads.
void BM_ForwardBertBase(benchmark::State& st) {
  const Model& m = bertBase();
  const std::vector<int32_t> ids = benchIds(st.range(0));
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

// The workspace's pass after a change to feed-forward matrices of every layer, at
// seq 128 on 2 threads: the whole pass with what a resume needs captured (Arg 0)
// against the pass resumed at layer 0's feed-forward block (1).
void BM_ForwardBertBaseResumeAtFfn(benchmark::State& st) {
  const Model& m = bertBase();
  const std::vector<int32_t> ids = benchIds(128);
  ThreadPool pool(2);
  ForwardOptions opt;
  opt.pool = &pool;
  opt.captureHidden = opt.captureFfnInputs = true;
  const ForwardResult before = forward(m.config, m.weights, ids, {}, opt).value();
  if (st.range(0) == 1) {
    opt.resume = &before;
    opt.resumeLayer = 0;
    opt.resumeAtFfn = true;
  }
  for (auto _ : st) {
    auto r = forward(m.config, m.weights, ids, {}, opt);
    benchmark::DoNotOptimize(r.ok());
  }
}
BENCHMARK(BM_ForwardBertBaseResumeAtFfn)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);

// The compression workspace's steps on BERT-base at seq 128, 2 threads (Arg):
// 0 = apply int8 per-channel weights to every Linear (with error statistics and
// histograms, as the explorer shows them), 1 = the same plus the forward pass and
// the fidelity numbers against the float model (what one control change costs),
// 2 = as 0 without the histograms, 3 = from that result, ffn_in to 4 bits (reapplyPlan:
// the 12 ffn_in matrices quantized again), 4 = from that result, 2:4 on ffn_in (the 12
// matrices pruned and quantized again), 5 = every Linear 8 ↔ 7 bits in turn from the previous
// result, which stays alive (the window holds it): all 72 matrices quantized again.
void BM_WorkspaceStepBertBase(benchmark::State& st) {
  const Model& m = bertBase();
  const std::vector<int32_t> ids = benchIds(128);
  ThreadPool pool(2);
  ForwardOptions opt;
  opt.pool = &pool;
  auto ref = forward(m.config, m.weights, ids, {}, opt);
  compress::CompressionPlan plan;
  if (!quant::applyPlanText("q,k,v,o,ffn_in,ffn_out=uniform:8:channel", plan.quant)) std::abort();
  if (st.range(0) == 5) {  // every Linear 8 <-> 7 bits in turn, the previous result alive (as the window)
    auto previous = compress::applyPlan(m, plan, &pool, nullptr, false, false);
    if (!previous) std::abort();
    compress::CompressionPlan a = plan, b = plan;
    if (!quant::applyPlanText("q,k,v,o,ffn_in,ffn_out=uniform:7:channel", b.quant)) std::abort();
    bool flip = false;
    auto step = [&] {
      auto again = compress::reapplyPlan(m, *previous, flip ? b : a, flip ? a : b, &pool, nullptr, false);
      if (!again) std::abort();
      previous = std::move(again);
      flip = !flip;
    };
    step();  // both results' buffers once, outside the timing: their first touch
    step();  // (page faults) is not what a change costs after the first two
    for (auto _ : st) step();
    return;
  }
  if (st.range(0) == 3 || st.range(0) == 4) {  // from the int8 result, 12 matrices again
    auto previous = compress::applyPlan(m, plan, &pool, nullptr, false, false);
    compress::CompressionPlan next = plan;
    if (st.range(0) == 3 && !quant::applyPlanText("ffn_in=uniform:4:channel", next.quant)) std::abort();
    if (st.range(0) == 4) {
      sparse::PruneSpec nm;
      nm.method = sparse::PruneMethod::NM;
      next.prune.targets[int(Target::FfnIn)] = nm;
    }
    for (auto _ : st) {
      auto again = compress::reapplyPlan(m, *previous, plan, next, &pool, nullptr, false);
      benchmark::DoNotOptimize(again.ok());
    }
    return;
  }
  for (auto _ : st) {
    auto applied = compress::applyPlan(m, plan, &pool, nullptr, false, st.range(0) != 2);
    if (st.range(0) == 1) {
      auto got = forward(applied->model->config, applied->model->weights, ids, {}, opt);
      const Fidelity f = fidelity(*ref, *got, &pool);
      benchmark::DoNotOptimize(f.klMean);
    }
    benchmark::DoNotOptimize(applied.ok());
  }
}
BENCHMARK(BM_WorkspaceStepBertBase)->Arg(0)->Arg(1)->Arg(2)->Arg(3)->Arg(4)->Arg(5)->Unit(benchmark::kMillisecond)->UseRealTime();

// The propagated sparse forward (τ = 0.01 on every head, rows renormalised) at
// seq 128, 2 threads: compare with BM_ForwardBertBase/128/2.
void BM_ForwardBertBaseSparseAttention(benchmark::State& st) {
  const Model& m = bertBase();
  const std::vector<int32_t> ids = benchIds(128);
  ThreadPool pool(2);
  ForwardOptions opt;
  opt.pool = &pool;
  sparse::AttentionPlan plan;
  plan.all = {sparse::AttentionRule::Kind::Threshold, 0.01, 1, 1, true};
  const ForwardOptions sparseOpt = sparse::withAttentionSparsity(opt, plan);
  for (auto _ : st) {
    auto r = forward(m.config, m.weights, ids, {}, sparseOpt);
    benchmark::DoNotOptimize(r.ok());
  }
}
BENCHMARK(BM_ForwardBertBaseSparseAttention)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(2.0);

// The workspace's read-outs after its forward pass at seq 128, 2 threads: KL, JS
// and MSE of all 144 heads against the float model, and KL to a teacher per head
// (here the float model itself, through the identity mapping).
// The float model's run on the 128-token input (once; it does not depend on the pool).
const ForwardResult& bertBaseRun128() {
  static const ForwardResult r = [] {
    ThreadPool pool(2);
    ForwardOptions opt;
    opt.pool = &pool;
    return forward(bertBase().config, bertBase().weights, benchIds(128), {}, opt).value();
  }();
  return r;
}

void BM_FidelityBertBase(benchmark::State& st) {
  const Model& m = bertBase();
  const std::vector<int32_t> ids = benchIds(128);
  ThreadPool pool(2);
  ForwardOptions opt;
  opt.pool = &pool;
  const ForwardResult& dense = bertBaseRun128();
  sparse::AttentionPlan plan;
  plan.all = {sparse::AttentionRule::Kind::Threshold, 0.01, 1, 1, true};
  const ForwardResult sparse =
      forward(m.config, m.weights, ids, {}, sparse::withAttentionSparsity(opt, plan)).value();
  std::vector<int> identity(size_t(m.config.layers));
  for (int l = 0; l < m.config.layers; ++l) identity[size_t(l)] = l;
  for (auto _ : st) {
    if (st.range(0) == 0) {
      const Fidelity f = fidelity(dense, sparse, &pool);
      benchmark::DoNotOptimize(f.klMean);
    } else {
      const auto kl = compress::teacherHeadKl(dense, sparse, identity, &pool);
      benchmark::DoNotOptimize(kl.data());
    }
  }
}
BENCHMARK(BM_FidelityBertBase)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();

// The visual preview: re-threshold all 144 heads of the captured BERT-base maps
// at seq 128 and recompute sparsity, kept mass and KL per head (no forward pass).
void BM_PreviewThresholdBertBase(benchmark::State& st) {
  ThreadPool pool(2);
  const ForwardResult& dense = bertBaseRun128();
  sparse::AttentionPlan plan;
  plan.all = {sparse::AttentionRule::Kind::Threshold, 0.01, 1, 1, false};
  for (auto _ : st) {
    auto pv = sparse::preview(dense, plan, &pool);
    benchmark::DoNotOptimize(pv.klMean);
  }
}
BENCHMARK(BM_PreviewThresholdBertBase)->Unit(benchmark::kMillisecond)->UseRealTime();

// The Sparsity panel's τ curve on the same maps (21 τ from 1e-4 to 0.5): one
// preview per τ (0), or sparse::thresholdCurve's one pass (1).
void BM_TauCurveBertBase(benchmark::State& st) {
  ThreadPool pool(2);
  const ForwardResult& dense = bertBaseRun128();
  std::vector<double> taus;
  for (int k = 0; k <= 20; ++k) taus.push_back(1e-4 * std::pow(0.5 / 1e-4, k / 20.0));
  for (auto _ : st) {
    double sum = 0.0;
    if (st.range(0) == 0) {
      sparse::AttentionPlan plan;
      for (double tau : taus) {
        plan.all = {sparse::AttentionRule::Kind::Threshold, tau, 1, 1, false};
        sum += sparse::preview(dense, plan, &pool).klMean;
      }
    } else {
      for (const auto& p : sparse::thresholdCurve(dense, taus, &pool)) sum += p.klMean;
    }
    benchmark::DoNotOptimize(sum);
  }
}
BENCHMARK(BM_TauCurveBertBase)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();
}  // namespace

// The Linear weights of BERT-base ([out, in]): per layer Q, K, V, O 768×768,
// FFN in 3072×768, FFN out 768×3072; 12 layers, 84.9 M weights.
struct BertBaseLinears {
  std::vector<std::vector<float>> w;
  std::vector<std::pair<int64_t, int64_t>> shape;
  BertBaseLinears() {
    uint32_t seed = 10;
    for (int l = 0; l < 12; ++l)
      for (auto [o, i] : {std::pair<int64_t, int64_t>{768, 768},
                          {768, 768},
                          {768, 768},
                          {768, 768},
                          {3072, 768},
                          {768, 3072}}) {
        w.push_back(randomVector(size_t(o * i), seed++));
        shape.emplace_back(o, i);
      }
  }
  int64_t weights() const {
    int64_t n = 0;
    for (auto [o, i] : shape) n += o * i;
    return n;
  }
};
const BertBaseLinears& bertBaseLinears() {
  static const BertBaseLinears b;
  return b;
}

// int8 symmetric per output channel (scale max|w_r|/127), as torch.quantize_per_channel.
// Arg: threads (0 = the scalar reference on one thread).
void BM_QuantizeInt8PerChannelBertBase(benchmark::State& st) {
  const auto& b = bertBaseLinears();
  ThreadPool pool(std::max<int>(1, int(st.range(0))));
  quant::Spec spec;  // uniform 8-bit symmetric per channel
  for (auto _ : st)
    for (size_t t = 0; t < b.w.size(); ++t) {
      auto q =
          st.range(0) == 0
              ? quant::quantizeRef(b.w[t].data(), b.shape[t].first, b.shape[t].second, spec)
              : quant::quantize(b.w[t].data(), b.shape[t].first, b.shape[t].second, spec, &pool);
      benchmark::DoNotOptimize(q);
    }
  st.counters["GB/s read"] =
      benchmark::Counter(4.0 * double(b.weights()), benchmark::Counter::kIsIterationInvariantRate);
  st.SetLabel(st.range(0) == 0 ? "scalar reference" : "vectorised");
}
BENCHMARK(BM_QuantizeInt8PerChannelBertBase)
    ->Arg(0)
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// For scale: the memory-bandwidth bound of the pass above — read every weight
// once (an OR of the bits, which vectorises) and write one byte per weight.
void BM_ReadWeightsWriteBytesBertBase(benchmark::State& st) {
  const auto& b = bertBaseLinears();
  std::vector<std::vector<uint8_t>> out;
  for (auto _ : st) {
    uint32_t m = 0;
    out.clear();
    for (const auto& w : b.w) {
      const auto* bits = reinterpret_cast<const uint32_t*>(w.data());
      for (size_t i = 0; i < w.size(); ++i) m |= bits[i];
      out.emplace_back(w.size());
      std::memset(out.back().data(), int(m & 1u), w.size());
    }
    benchmark::DoNotOptimize(m);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_ReadWeightsWriteBytesBertBase)->Unit(benchmark::kMillisecond)->UseRealTime();

// Magnitude pruning (50 %) of every Linear weight of BERT-base: per tensor, and
// global over all of them. Arg: 0 per tensor, 1 global.
void BM_PruneMagnitudeBertBase(benchmark::State& st) {
  const auto& b = bertBaseLinears();
  std::vector<sparse::MatrixView> views;
  for (size_t t = 0; t < b.w.size(); ++t)
    views.push_back({b.w[t].data(), b.shape[t].first, b.shape[t].second});
  for (auto _ : st) {
    if (st.range(0) == 1) {
      auto masks = sparse::globalMagnitudeMasks(views, 0.5);
      benchmark::DoNotOptimize(masks);
    } else {
      sparse::PruneSpec s;
      s.sparsity = 0.5;
      for (const auto& v : views) {
        auto mask = sparse::pruneMask(v.w, v.rows, v.cols, s);
        benchmark::DoNotOptimize(mask);
      }
    }
  }
  st.SetLabel(st.range(0) == 1 ? "global" : "per tensor");
}
BENCHMARK(BM_PruneMagnitudeBertBase)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();

// 2:4 masks of every Linear weight of BERT-base, 2 threads.
void BM_PruneNM24BertBase(benchmark::State& st) {
  const auto& b = bertBaseLinears();
  ThreadPool pool(2);
  sparse::PruneSpec s;
  s.method = sparse::PruneMethod::NM;
  for (auto _ : st)
    for (size_t t = 0; t < b.w.size(); ++t) {
      auto mask = sparse::pruneMask(b.w[t].data(), b.shape[t].first, b.shape[t].second, s, &pool);
      benchmark::DoNotOptimize(mask);
    }
}
BENCHMARK(BM_PruneNM24BertBase)->Unit(benchmark::kMillisecond)->UseRealTime();

// 16-level k-means (Lloyd, one codebook) of a 768×3072 matrix.
void BM_KMeans16(benchmark::State& st) {
  const auto w = randomVector(768 * 3072, 42);
  quant::Spec spec;
  spec.method = quant::Method::KMeans;
  spec.bits = 4;
  spec.granularity = quant::Granularity::Tensor;
  int iterations = 0;
  for (auto _ : st) {
    auto q = quant::quantize(w.data(), 3072, 768, spec);
    iterations = q->iterations;
    benchmark::DoNotOptimize(q);
  }
  st.counters["Lloyd iterations"] = iterations;
}
BENCHMARK(BM_KMeans16)->Unit(benchmark::kMillisecond)->UseRealTime();

// What the tuning panel does when a control moves: re-quantize one FFN matrix
// (4-bit, groups of 128) and compute its error statistics and histograms.
void BM_RequantizeWithStats(benchmark::State& st) {
  const auto w = randomVector(3072 * 768, 43);
  ThreadPool pool(2);
  quant::Spec spec;
  spec.bits = 4;
  spec.granularity = quant::Granularity::Group;
  spec.groupSize = 128;
  for (auto _ : st) {
    auto q = quant::quantize(w.data(), 3072, 768, spec, &pool);
    auto stats = quant::errorStats(w.data(), *q, 128, &pool);
    benchmark::DoNotOptimize(stats);
  }
}
BENCHMARK(BM_RequantizeWithStats)->Unit(benchmark::kMillisecond)->UseRealTime();

// One distillation training step (issue 6): a 2-layer, hidden-128, 4-head student
// against a 4-layer, hidden-256, 4-head teacher (BERT-style, vocabulary 2048),
// batch 32 × seq 64, attention KL per head + MiniLM value relation, uniform
// mapping, AdamW with clipping. Models written once into $TMPDIR; the PyTorch
// side is tests/tools/bench_torch_distill.py on the same folders.
std::filesystem::path distillBenchDir() {
  const char* tmp = std::getenv("TMPDIR");
  return std::filesystem::path(tmp != nullptr ? tmp : "/tmp") / "attn-bench-distill";
}

std::shared_ptr<const Model> distillBenchModel(const char* name, int layers, int hidden) {
  const auto dir = distillBenchDir() / name;
  if (!std::filesystem::exists(dir / "model.safetensors")) {
    const std::string config =
        "{\"architectures\": [\"BertModel\"], \"model_type\": \"bert\", \"hidden_size\": " +
        std::to_string(hidden) + ", \"num_hidden_layers\": " + std::to_string(layers) +
        ", \"num_attention_heads\": 4, \"intermediate_size\": " + std::to_string(4 * hidden) +
        ", \"max_position_embeddings\": 128, \"vocab_size\": 2048, \"type_vocab_size\": 2, "
        "\"pad_token_id\": 0, \"layer_norm_eps\": 1e-12, \"hidden_act\": \"gelu\"}";
    std::filesystem::remove_all(dir);
    if (!distill::writeInitialModel(dir, config, {}, layers)) std::abort();
  }
  auto m = loadModel(dir);
  if (!m) std::abort();
  return *m;
}

void BM_DistillStep(benchmark::State& st) {
  auto teacher = distillBenchModel("teacher", 4, 256);
  auto student = distillBenchModel("student", 2, 128);
  distill::TokenizedCorpus corpus;
  std::mt19937 rng(1);
  std::uniform_int_distribution<int> id(5, 2047);
  for (int e = 0; e < 256; ++e) {
    std::vector<int32_t> ids(64);
    for (auto& x : ids) x = id(rng);
    corpus.examples.push_back(std::move(ids));
  }
  distill::TrainOptions o;
  o.loss.mapping = uniformLayerMap(2, 4);
  o.loss.attention = distill::AttentionLoss::Kl;
  o.loss.valueWeight = 1.0;
  o.steps = 1000000;
  o.batch = 32;
  o.seq = 64;
  o.lr = 1e-4;
  o.threads = static_cast<int>(st.range(0));
  auto t = distill::Trainer::create(student, teacher, corpus, o);
  if (!t) std::abort();
  for (auto _ : st) {
    auto r = (*t)->step();
    benchmark::DoNotOptimize(r);
  }
  st.counters["examples/s"] =
      benchmark::Counter(static_cast<double>(st.iterations()) * 32, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_DistillStep)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

// As the app and the CLI run (core/util/memory.h); ATTN_BENCH_TRIM_HEAP=1: glibc's
// defaults, to measure what that setting saves.
int main(int argc, char** argv) {
  if (!std::getenv("ATTN_BENCH_TRIM_HEAP")) attn::keepFreedMemoryForReuse();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
}
