// Sums in double that the compiler can vectorise.
#pragma once

#include <cstdint>

namespace attn {

// Σ term(i) for i in [0, n), in eight independent double lanes added up in a
// fixed order at the end (the same result whatever the pool or the chunking, for
// a given build: the compiler may fuse a term's multiply-add where the CPU has FMA). One running sum is
// a serial chain of additions, which the compiler may not reorder into SIMD
// lanes (nor does Eigen 3.4 vectorise a reduction over a float → double cast):
// ~4 cycles per term instead of a fraction of one.
template <class Term>
double laneSum(int64_t n, Term term) {
  constexpr int kLanes = 8;
  double lane[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int k = 0; k < kLanes; ++k) lane[k] += term(i + k);
  for (; i < n; ++i) lane[0] += term(i);
  return ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
}

}  // namespace attn
