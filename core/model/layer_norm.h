// Row statistics of LayerNorm in double, shared by the inference forward pass
// and the trainer so that both normalise identically.
#pragma once

#include <cmath>
#include <cstdint>

#include "core/util/lane_sum.h"

namespace attn {

struct RowStats {
  double mean = 0.0, inv = 0.0;  // inv = 1 / √(σ² + eps), biased σ² as torch
};

// The sums in eight double lanes (laneSum): a plain running sum was 1.7 % of a
// BERT-base forward pass.
inline RowStats layerNormStats(const float* x, int64_t d, float eps) {
  RowStats s;
  s.mean = laneSum(d, [&](int64_t i) { return double(x[i]); }) / static_cast<double>(d);
  const double mean = s.mean;
  const double var =
      laneSum(d, [&](int64_t i) { return (x[i] - mean) * (x[i] - mean); }) / static_cast<double>(d);
  s.inv = 1.0 / std::sqrt(var + static_cast<double>(eps));
  return s;
}

}  // namespace attn
