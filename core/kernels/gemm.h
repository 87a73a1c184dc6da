// Dense float32 matrix products for linear layers: Y = X · Wᵀ + b.
// X: [M, K] row-major, W: [N, K] (nn.Linear) or [K, N] (Conv1D, `inOut`),
// Y: [M, N] row-major, b: [N] or nullptr.
#pragma once

#include <cstdint>

#include "core/util/parallel.h"

namespace attn {

struct GemmArgs {
  int64_t m = 0, n = 0, k = 0;
  const float* x = nullptr;  // [M, K], leading dimension k
  const float* w = nullptr;  // [N, K] or [K, N] when inOut
  bool inOut = false;
  const float* bias = nullptr;  // [N] or nullptr
  float* y = nullptr;           // [M, N], leading dimension n
};

// Plain triple loop with double accumulation: the definition the fast path is
// tested against (DESIGN rule 8).
void linearRef(const GemmArgs& a);

// Blocked, packed, register-tiled (an 8 × 32 AVX-512 micro-kernel where the build
// targets AVX-512, else 6 × 16 AVX2/FMA where it targets AVX2, else Eigen);
// columns of Y are split over the pool's threads.
void linearFast(const GemmArgs& a, ThreadPool* pool);

// Which kernel linearFast uses on this build: "avx512-8x32", "avx2-fma-6x16" or "eigen".
const char* linearKernelName();

}  // namespace attn
