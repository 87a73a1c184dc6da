// The exponential step of a softmax row, shared by the inference forward pass
// and the trainer so that both compute attention identically.
#pragma once

#include <Eigen/Core>
#include <cmath>
#include <cstdint>

namespace attn {

// x ← exp(x) for a row already shifted by its maximum, as float32 exp gives it:
// subnormal from −87.3 down, exactly 0 below −104 (masked keys: finfo.min − max,
// or −inf). A SIMD packet at a time with Eigen's exp, which clamps its input at
// −88.72 (exp(−100) would come out 2.9e-39, not 3.7e-44; masked keys 2.9e-39, not 0):
// in a packet with a value below −87 those lanes take exp(x + 87) · exp(−87),
// one rounding into the subnormal range. Not written as an Array expression:
// Eigen 3.4 evaluates select(), or any mix with a bool array, one scalar at a
// time, which made every exp a libm call. NaN stays NaN.
inline void expShiftedRow(float* x, int64_t n) {
  namespace ei = Eigen::internal;
  using Packet = ei::packet_traits<float>::type;
  constexpr int64_t W = int64_t(sizeof(Packet) / sizeof(float));
  const Packet low = ei::pset1<Packet>(-87.0f), shift = ei::pset1<Packet>(87.0f),
               expLow = ei::pset1<Packet>(std::exp(-87.0f));  // a normal float, 1.6e-38
  int64_t j = 0;
  for (; j + W <= n; j += W) {
    const Packet v = ei::ploadu<Packet>(x + j);
    Packet e = ei::pexp(v);
    const Packet small = ei::pcmp_lt(v, low);
    if (ei::predux_any(small))  // subnormal results: Eigen's exp would clamp them
      e = ei::pselect(small, ei::pmul(ei::pexp(ei::padd(v, shift)), expLow), e);
    ei::pstoreu(x + j, e);
  }
  for (; j < n; ++j) x[j] = std::exp(x[j]);
}

}  // namespace attn
