// Row statistics of LayerNorm in double, shared by the inference forward pass
// and the trainer so that both normalise identically.
#pragma once

#include <cmath>
#include <cstdint>

namespace attn {

struct RowStats {
  double mean = 0.0, inv = 0.0;  // inv = 1 / √(σ² + eps), biased σ² as torch
};

inline RowStats layerNormStats(const float* x, int64_t d, float eps) {
  RowStats s;
  for (int64_t i = 0; i < d; ++i) s.mean += x[i];
  s.mean /= static_cast<double>(d);
  double var = 0.0;
  for (int64_t i = 0; i < d; ++i) var += (x[i] - s.mean) * (x[i] - s.mean);
  var /= static_cast<double>(d);
  s.inv = 1.0 / std::sqrt(var + static_cast<double>(eps));
  return s;
}

}  // namespace attn
