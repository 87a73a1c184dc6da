// GEMM for Y = X · Wᵀ + b, BLIS-style: for each K block of kKc, pack X into
// row panels of kMr and W into column panels of kNr (zero-padded), then a
// kMr × kNr register-tiled micro-kernel accumulates into Y. The first K block's
// micro-kernels start from the bias (not from Y); each later one adds to Y.
#include "core/kernels/gemm.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>
#include <vector>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define ATTN_GEMM_AVX2 1
#if defined(__AVX512F__)
// Same blocking with 512-bit registers: an 8 × 32 tile (16 accumulators).
#define ATTN_GEMM_AVX512 1
#endif
#else
#include <Eigen/Core>
#endif

namespace attn {

void linearRef(const GemmArgs& a) {
  for (int64_t i = 0; i < a.m; ++i)
    for (int64_t j = 0; j < a.n; ++j) {
      double s = a.bias != nullptr ? a.bias[j] : 0.0;
      for (int64_t p = 0; p < a.k; ++p) {
        const float w = a.inOut ? a.w[p * a.n + j] : a.w[j * a.k + p];
        s += static_cast<double>(a.x[i * a.k + p]) * w;
      }
      a.y[i * a.n + j] = static_cast<float>(s);
    }
}

#if ATTN_GEMM_AVX2

namespace {
#if ATTN_GEMM_AVX512
constexpr int64_t kMr = 8;    // rows of the micro-tile (16 accumulators)
constexpr int64_t kNr = 32;   // columns: two 16-float registers
#else
constexpr int64_t kMr = 6;    // rows of the micro-tile (12 accumulators)
constexpr int64_t kNr = 16;   // columns: two 8-float registers
#endif
constexpr int64_t kKc = 256;  // K block: a packed W panel (kKc × kNr) stays in L1
constexpr int64_t kNc = 64;   // columns of W packed at a time
constexpr int64_t kNt = 128;  // columns per task: their strip of Y stays in L2

#if ATTN_GEMM_AVX512
// ap: [kc][kMr] packed rows of X; bp: [kc][kNr] packed columns of W.
// c: R × kNr tile of Y (leading dimension ldc) += ap · bp; or, with `init`
// (the first K block), = init (kNr values: the bias, or zeros, in every row) + ap · bp —
// the same sums in the same order as writing init into Y first, without that pass.
// R < kMr for the last, partial row panel, so the tokens past a multiple of kMr
// cost only their own FMAs.
template <int R>
inline void microKernelRows(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc,
                            const float* init) {
  __m512 acc[R][2];
  for (int r = 0; r < R; ++r) {
    acc[r][0] = _mm512_loadu_ps(init != nullptr ? init : c + r * ldc);
    acc[r][1] = _mm512_loadu_ps(init != nullptr ? init + 16 : c + r * ldc + 16);
  }
  // Unrolled: loop overhead otherwise costs ~10% of the FMA throughput.
#pragma GCC unroll 4
  for (int64_t p = 0; p < kc; ++p) {
    const __m512 b0 = _mm512_load_ps(bp), b1 = _mm512_load_ps(bp + 16);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512 a = _mm512_set1_ps(ap[r]);
      acc[r][0] = _mm512_fmadd_ps(a, b0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(a, b1, acc[r][1]);
    }
    ap += kMr;
    bp += kNr;
  }
  for (int r = 0; r < R; ++r) {
    _mm512_storeu_ps(c + r * ldc, acc[r][0]);
    _mm512_storeu_ps(c + r * ldc + 16, acc[r][1]);
  }
}

inline void microKernel(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc,
                        const float* init = nullptr) {
  microKernelRows<int(kMr)>(kc, ap, bp, c, ldc, init);
}

#else
// ap: [kc][kMr] packed rows of X; bp: [kc][kNr] packed columns of W.
// c: kMr × kNr tile of Y (leading dimension ldc) += ap · bp; or, with `init`
// (the first K block), = init (kNr values: the bias, or zeros, in every row) + ap · bp —
// the same sums in the same order as writing init into Y first, without that pass.
inline void microKernel(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc,
                        const float* init = nullptr) {
  __m256 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
  if (init != nullptr) {
    c00 = c10 = c20 = c30 = c40 = c50 = _mm256_loadu_ps(init);
    c01 = c11 = c21 = c31 = c41 = c51 = _mm256_loadu_ps(init + 8);
  } else {
    c00 = _mm256_loadu_ps(c + 0 * ldc), c01 = _mm256_loadu_ps(c + 0 * ldc + 8);
    c10 = _mm256_loadu_ps(c + 1 * ldc), c11 = _mm256_loadu_ps(c + 1 * ldc + 8);
    c20 = _mm256_loadu_ps(c + 2 * ldc), c21 = _mm256_loadu_ps(c + 2 * ldc + 8);
    c30 = _mm256_loadu_ps(c + 3 * ldc), c31 = _mm256_loadu_ps(c + 3 * ldc + 8);
    c40 = _mm256_loadu_ps(c + 4 * ldc), c41 = _mm256_loadu_ps(c + 4 * ldc + 8);
    c50 = _mm256_loadu_ps(c + 5 * ldc), c51 = _mm256_loadu_ps(c + 5 * ldc + 8);
  }
  // Unrolled: loop overhead otherwise costs ~10% of the FMA throughput.
#pragma GCC unroll 4
  for (int64_t p = 0; p < kc; ++p) {
    const __m256 b0 = _mm256_load_ps(bp), b1 = _mm256_load_ps(bp + 8);
    __m256 a;
    a = _mm256_broadcast_ss(ap + 0);
    c00 = _mm256_fmadd_ps(a, b0, c00);
    c01 = _mm256_fmadd_ps(a, b1, c01);
    a = _mm256_broadcast_ss(ap + 1);
    c10 = _mm256_fmadd_ps(a, b0, c10);
    c11 = _mm256_fmadd_ps(a, b1, c11);
    a = _mm256_broadcast_ss(ap + 2);
    c20 = _mm256_fmadd_ps(a, b0, c20);
    c21 = _mm256_fmadd_ps(a, b1, c21);
    a = _mm256_broadcast_ss(ap + 3);
    c30 = _mm256_fmadd_ps(a, b0, c30);
    c31 = _mm256_fmadd_ps(a, b1, c31);
    a = _mm256_broadcast_ss(ap + 4);
    c40 = _mm256_fmadd_ps(a, b0, c40);
    c41 = _mm256_fmadd_ps(a, b1, c41);
    a = _mm256_broadcast_ss(ap + 5);
    c50 = _mm256_fmadd_ps(a, b0, c50);
    c51 = _mm256_fmadd_ps(a, b1, c51);
    ap += kMr;
    bp += kNr;
  }
  _mm256_storeu_ps(c + 0 * ldc, c00);
  _mm256_storeu_ps(c + 0 * ldc + 8, c01);
  _mm256_storeu_ps(c + 1 * ldc, c10);
  _mm256_storeu_ps(c + 1 * ldc + 8, c11);
  _mm256_storeu_ps(c + 2 * ldc, c20);
  _mm256_storeu_ps(c + 2 * ldc + 8, c21);
  _mm256_storeu_ps(c + 3 * ldc, c30);
  _mm256_storeu_ps(c + 3 * ldc + 8, c31);
  _mm256_storeu_ps(c + 4 * ldc, c40);
  _mm256_storeu_ps(c + 4 * ldc + 8, c41);
  _mm256_storeu_ps(c + 5 * ldc, c50);
  _mm256_storeu_ps(c + 5 * ldc + 8, c51);
}

// The same for the last, partial row panel: R < kMr rows, so the tokens past a
// multiple of kMr cost only their own FMAs.
template <int R>
inline void microKernelRows(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc,
                            const float* init) {
  __m256 acc[R][2];
  for (int r = 0; r < R; ++r) {
    acc[r][0] = _mm256_loadu_ps(init != nullptr ? init : c + r * ldc);
    acc[r][1] = _mm256_loadu_ps(init != nullptr ? init + 8 : c + r * ldc + 8);
  }
  for (int64_t p = 0; p < kc; ++p) {
    const __m256 b0 = _mm256_load_ps(bp), b1 = _mm256_load_ps(bp + 8);
    for (int r = 0; r < R; ++r) {
      const __m256 a = _mm256_broadcast_ss(ap + r);
      acc[r][0] = _mm256_fmadd_ps(a, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(a, b1, acc[r][1]);
    }
    ap += kMr;
    bp += kNr;
  }
  for (int r = 0; r < R; ++r) {
    _mm256_storeu_ps(c + r * ldc, acc[r][0]);
    _mm256_storeu_ps(c + r * ldc + 8, acc[r][1]);
  }
}

#endif

// 8 × 8 transpose in registers: rows r[0..7] become columns.
inline void transpose8x8(__m256 r[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xee);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xee);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xee);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xee);
  r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
  r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
  r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

// 64-byte aligned scratch that grows as needed (one per thread and call).
struct Scratch {
  std::vector<float> buf;
  float* get(size_t n) {
    buf.resize(n + 16);
    auto p = reinterpret_cast<uintptr_t>(buf.data());
    return reinterpret_cast<float*>((p + 63) & ~uintptr_t(63));
  }
};

// Packs nn.Linear W rows j0..j0+nr (Y's columns), inputs k0..k0+kc, as
// bp[kc][kNr] (zero past nr).
void packB(const GemmArgs& a, int64_t j0, int64_t nr, int64_t k0, int64_t kc, float* bp) {
  const int64_t k = a.k;
  if (nr == kNr) {
    // nn.Linear: W rows are contiguous in k; transpose 8 × 8 blocks so the
    // packing streams at vector speed (it costs as much as the FMAs otherwise).
    int64_t p = 0;
    for (; p + 8 <= kc; p += 8)
      for (int64_t half = 0; half < kNr / 8; ++half) {
        __m256 r[8];
        for (int64_t j = 0; j < 8; ++j)
          r[j] = _mm256_loadu_ps(a.w + (j0 + half * 8 + j) * k + k0 + p);
        transpose8x8(r);
        for (int64_t t = 0; t < 8; ++t) _mm256_store_ps(bp + (p + t) * kNr + half * 8, r[t]);
      }
    for (; p < kc; ++p)
      for (int64_t j = 0; j < kNr; ++j) bp[p * kNr + j] = a.w[(j0 + j) * k + k0 + p];
  } else {
    for (int64_t j = 0; j < kNr; ++j) {
      if (j < nr) {
        const float* src = a.w + (j0 + j) * k + k0;
        for (int64_t p = 0; p < kc; ++p) bp[p * kNr + j] = src[p];
      } else {
        for (int64_t p = 0; p < kc; ++p) bp[p * kNr + j] = 0.0f;
      }
    }
  }
}

// Packs columns g0..g1 (at most kNc) of W for rows k0..k0+kc as consecutive
// [kc][kNr] panels. A Conv1D weight is read row by row, a whole group's span
// (256 bytes) at a time, so each page of W is visited once per group.
void packGroup(const GemmArgs& a, int64_t g0, int64_t g1, int64_t k0, int64_t kc, float* bp) {
  const int64_t panels = (g1 - g0 + kNr - 1) / kNr;
  if (a.inOut) {
    for (int64_t p = 0; p < kc; ++p) {
      const float* src = a.w + (k0 + p) * a.n + g0;
      for (int64_t jp = 0; jp < panels; ++jp) {
        const int64_t nr = std::min(kNr, g1 - g0 - jp * kNr);
        float* dst = bp + (jp * kKc + p) * kNr;
        for (int64_t j = 0; j < nr; ++j) dst[j] = src[jp * kNr + j];
        for (int64_t j = nr; j < kNr; ++j) dst[j] = 0.0f;
      }
    }
  } else {
    for (int64_t jp = 0; jp < panels; ++jp) {
      const int64_t j0 = g0 + jp * kNr;
      packB(a, j0, std::min(kNr, g1 - j0), k0, kc, bp + jp * kKc * kNr);
    }
  }
}

// GCC's dead-code elimination dropped _mm_prefetch in the loop below (the compiled
// kernel had no prefetch instruction at all); an asm statement stays. The address
// goes in a register: no memory operand (a line past W's end is never touched).
inline void prefetchLine(const float* p) { asm volatile("prefetcht0 (%0)" : : "r"(p)); }

// Walks the W cache lines packGroup(g0, g1, k0, kc) will read, prefetching a few
// per micro-kernel call so they stream in from DRAM while the current step
// computes (a cursor: no division per call).
struct PrefetchCursor {
  const float* base = nullptr;
  int64_t stride = 0, linesPerRow = 1, row = 0, line = 0, left = 0;
  PrefetchCursor(const GemmArgs& a, int64_t g0, int64_t g1, int64_t k0, int64_t kc) {
    if (g0 >= a.n) return;  // no next step
    // Conv1D: kc rows of W, (g1 - g0) floats each; nn.Linear: (g1 - g0) rows, kc floats each.
    const int64_t rows = a.inOut ? kc : g1 - g0;
    linesPerRow = ((a.inOut ? g1 - g0 : kc) + 15) / 16;
    stride = a.inOut ? a.n : a.k;
    base = a.inOut ? a.w + k0 * a.n + g0 : a.w + g0 * a.k + k0;
    left = rows * linesPerRow;
  }
  void step(int64_t n) {
    n = std::min(n, left);
    left -= n;
    for (; n > 0; --n) {
      prefetchLine(base + row * stride + line * 16);
      if (++line == linesPerRow) line = 0, ++row;
    }
  }
};

// Packs X[:, k0:k0+kc] rows of m-panel mp as [kc][kMr] (rows past m are zero).
void packA(const GemmArgs& a, int64_t mp, int64_t k0, int64_t kc, float* dst) {
  if constexpr (kMr == 8) {
    if (mp * kMr + kMr <= a.m) {  // a full panel: 8 × 8 blocks transposed in registers
      const float* src = a.x + mp * kMr * a.k + k0;
      int64_t p = 0;
      for (; p + 8 <= kc; p += 8) {
        __m256 r[8];
        for (int64_t j = 0; j < 8; ++j) r[j] = _mm256_loadu_ps(src + j * a.k + p);
        transpose8x8(r);
        for (int64_t t = 0; t < 8; ++t) _mm256_store_ps(dst + (p + t) * kMr, r[t]);
      }
      for (; p < kc; ++p)
        for (int64_t r = 0; r < kMr; ++r) dst[p * kMr + r] = src[r * a.k + p];
      return;
    }
  }
  for (int64_t r = 0; r < kMr; ++r) {
    const int64_t i = mp * kMr + r;
    if (i < a.m) {
      const float* src = a.x + i * a.k + k0;
      for (int64_t p = 0; p < kc; ++p) dst[p * kMr + r] = src[p];
    } else {
      for (int64_t p = 0; p < kc; ++p) dst[p * kMr + r] = 0.0f;
    }
  }
}

// kRowKernels[R - 1] = microKernelRows<R> for the partial row panels, R = 1 … kMr - 1.
using RowKernel = void (*)(int64_t, const float*, const float*, float*, int64_t, const float*);
template <size_t... R>
constexpr std::array<RowKernel, sizeof...(R)> rowKernels(std::index_sequence<R...>) {
  return {&microKernelRows<int(R) + 1>...};
}
constexpr auto kRowKernels = rowKernels(std::make_index_sequence<size_t(kMr - 1)>());

// Y[:, n0:n1] for one thread, from X packed in `ap`: for K block kb and
// m-panel mp, [kc][kMr] at ap + (kb * mPanels + mp) * kKc * kMr. W is packed a
// group of kNc columns at a time.
void gemmColumns(const GemmArgs& a, const float* ap, int64_t n0, int64_t n1) {
  const int64_t m = a.m, k = a.k, ldy = a.n;
  const int64_t mPanels = (m + kMr - 1) / kMr;
  const int64_t kBlocks = (k + kKc - 1) / kKc;
  constexpr int64_t kPanelsPerGroup = kNc / kNr;
  thread_local Scratch bs, ts, is;
  float* tile = ts.get(kMr * kNr);
  // Y's starting values for columns n0…n1 (bias or zeros, padded to whole panels):
  // the first K block's micro-kernels start from them instead of from Y.
  float* init = is.get(static_cast<size_t>(n1 - n0 + kNr));
  for (int64_t j = n0; j < n1 + kNr; ++j)
    init[j - n0] = j < n1 && a.bias != nullptr ? a.bias[j] : 0.0f;
  if (kBlocks == 0) {  // no inputs: Y is the bias
    for (int64_t i = 0; i < m; ++i) std::copy(init, init + (n1 - n0), a.y + i * ldy + n0);
    return;
  }
  // The whole group's panels for one K block: [panel][kc][kNr].
  float* bp = bs.get(static_cast<size_t>(kPanelsPerGroup * kKc * kNr));
  // K blocks outermost: X's packed block for one K block is read from L2 by every
  // group of the task, and the task's strip of Y stays in L2 across K blocks.
  const int64_t groups = (n1 - n0 + kNc - 1) / kNc;
  for (int64_t kb = 0; kb < kBlocks; ++kb) {
    const int64_t k0 = kb * kKc, kc = std::min(kKc, k - k0);
    for (int64_t gi = 0; gi < groups; ++gi) {
      const int64_t g0 = n0 + gi * kNc, g1 = std::min(g0 + kNc, n1),
                    panels = (g1 - g0 + kNr - 1) / kNr;
      packGroup(a, g0, g1, k0, kc, bp);
      // Prefetch what the next step packs (the next group, else the next K block's
      // first), spread over this step's micro-kernels.
      const bool lastGroup = gi + 1 == groups;
      const int64_t pg0 = !lastGroup ? g1 : kb + 1 < kBlocks ? n0 : a.n;
      const int64_t pk0 = !lastGroup ? k0 : k0 + kKc;
      const int64_t pg1 = std::min(pg0 + kNc, n1), pkc = std::min(kKc, k - pk0);
      PrefetchCursor next(a, pg0, pg1, pk0, pkc);
      const int64_t perCall = (next.left + panels * mPanels - 1) / (panels * mPanels);
      for (int64_t jp = 0; jp < panels; ++jp) {
        const int64_t j0 = g0 + jp * kNr, nr = std::min(kNr, g1 - j0);
        const float* bpanel = bp + jp * kKc * kNr;
        for (int64_t mp = 0; mp < mPanels; ++mp) {
          next.step(perCall);
          const int64_t i0 = mp * kMr, mr = std::min(kMr, m - i0);
          const float* apanel = ap + (kb * mPanels + mp) * kKc * kMr;
          float* c = a.y + i0 * ldy + j0;
          const float* start = kb == 0 ? init + (j0 - n0) : nullptr;
          if (mr == kMr && nr == kNr) {
            microKernel(kc, apanel, bpanel, c, ldy, start);
          } else if (nr == kNr) {
            kRowKernels[size_t(mr - 1)](kc, apanel, bpanel, c, ldy, start);
          } else {  // edge tile: go through a full-size scratch tile
            for (int64_t r = 0; r < kMr; ++r)
              for (int64_t j = 0; j < kNr; ++j)
                tile[r * kNr + j] = r < mr && j < nr ? (start != nullptr ? start[j] : c[r * ldy + j]) : 0.0f;
            microKernel(kc, apanel, bpanel, tile, kNr);
            for (int64_t r = 0; r < mr; ++r)
              std::memcpy(c + r * ldy, tile + r * kNr, static_cast<size_t>(nr) * sizeof(float));
          }
        }
      }
    }
  }
}
}  // namespace

void linearFast(const GemmArgs& a, ThreadPool* pool) {
  if (a.m == 0 || a.n == 0) return;
  // X is packed once, shared by the threads that then split Y's columns.
  const int64_t mPanels = (a.m + kMr - 1) / kMr, kBlocks = (a.k + kKc - 1) / kKc;
  thread_local Scratch packed;
  float* ap = packed.get(static_cast<size_t>(kBlocks * mPanels * kKc * kMr));
  auto pack = [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t kb = t / mPanels, mp = t % mPanels, k0 = kb * kKc;
      packA(a, mp, k0, std::min(kKc, a.k - k0), ap + t * kKc * kMr);
    }
  };
  // Column groups are handed out dynamically, so a thread that the machine
  // slows down does not hold the others back.
  const int64_t groups = (a.n + kNt - 1) / kNt;
  auto group = [&](int64_t g) { gemmColumns(a, ap, g * kNt, std::min((g + 1) * kNt, a.n)); };
  if (pool != nullptr) {
    pool->chunks(kBlocks * mPanels, pack);
    pool->run(groups, group);
  } else {
    pack(0, kBlocks * mPanels);
    for (int64_t g = 0; g < groups; ++g) group(g);
  }
}

const char* linearKernelName() {
#if ATTN_GEMM_AVX512
  return "avx512-8x32";
#else
  return "avx2-fma-6x16";
#endif
}

#else  // no AVX2/FMA: Eigen's kernels

void linearFast(const GemmArgs& a, ThreadPool* pool) {
  using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const Eigen::Map<const Mat> x(a.x, a.m, a.k);
  Eigen::Map<Mat> y(a.y, a.m, a.n);
  const int64_t blocks = (a.n + 15) / 16;
  auto run = [&](int64_t b0, int64_t b1) {
    const int64_t c0 = b0 * 16, n = std::min(b1 * 16, a.n) - c0;
    if (n <= 0) return;
    if (a.inOut)
      y.middleCols(c0, n).noalias() = x * Eigen::Map<const Mat>(a.w, a.k, a.n).middleCols(c0, n);
    else
      y.middleCols(c0, n).noalias() =
          x * Eigen::Map<const Mat>(a.w, a.n, a.k).middleRows(c0, n).transpose();
    if (a.bias != nullptr)
      y.middleCols(c0, n).rowwise() += Eigen::Map<const Eigen::RowVectorXf>(a.bias + c0, n);
  };
  if (pool != nullptr)
    pool->chunks(blocks, run);
  else
    run(0, blocks);
}

const char* linearKernelName() { return "eigen"; }

#endif

}  // namespace attn
