// Row statistics of LayerNorm in double, shared by the inference forward pass
// and the trainer so that both normalise identically.
#pragma once

#include <cmath>
#include <cstdint>

namespace attn {

struct RowStats {
  double mean = 0.0, inv = 0.0;  // inv = 1 / √(σ² + eps), biased σ² as torch
};

// Sums of x and of (x − mean)² in eight independent double lanes, added up in a
// fixed order at the end: GCC vectorises the lanes, where one running sum (or an
// Eigen reduction over a float → double cast, which Eigen 3.4 evaluates one
// scalar at a time) is a serial chain of additions — 1.7 % of a BERT-base pass.
inline RowStats layerNormStats(const float* x, int64_t d, float eps) {
  constexpr int kLanes = 8;
  auto laneSum = [&](auto term) {
    double lane[kLanes] = {};
    int64_t i = 0;
    for (; i + kLanes <= d; i += kLanes)
      for (int k = 0; k < kLanes; ++k) lane[k] += term(x[i + k]);
    for (; i < d; ++i) lane[0] += term(x[i]);
    return ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
  };
  RowStats s;
  s.mean = laneSum([](float v) { return double(v); }) / static_cast<double>(d);
  const double mean = s.mean;
  const double var = laneSum([mean](float v) { return (v - mean) * (v - mean); }) / static_cast<double>(d);
  s.inv = 1.0 / std::sqrt(var + static_cast<double>(eps));
  return s;
}

}  // namespace attn
