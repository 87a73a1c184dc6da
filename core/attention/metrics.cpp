#include "core/attention/metrics.h"

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "core/util/lane_sum.h"

namespace attn {

namespace {
// Averages f(row) over the included rows.
template <class F>
double meanOverRows(int seq, std::span<const uint8_t> rows, F f) {
  double sum = 0.0;
  int n = 0;
  for (int i = 0; i < seq; ++i) {
    if (!rows.empty() && (static_cast<size_t>(i) >= rows.size() || rows[i] == 0)) continue;
    sum += f(i);
    ++n;
  }
  return n > 0 ? sum / n : 0.0;
}

// 0 · ln 0 = 0; NaN stays NaN so a broken map does not report a plausible value.
double xlogx(double x) { return x > 0.0 || std::isnan(x) ? x * std::log(x) : 0.0; }
}  // namespace

double attentionEntropy(const float* p, int seq, std::span<const uint8_t> rows) {
  return meanOverRows(seq, rows, [&](int i) {
    double h = 0.0;
    for (int j = 0; j < seq; ++j) h -= xlogx(p[static_cast<size_t>(i) * seq + j]);
    return h;
  });
}

double meanAttentionDistance(const float* p, int seq, std::span<const uint8_t> rows) {
  return meanOverRows(seq, rows, [&](int i) {
    double d = 0.0;
    for (int j = 0; j < seq; ++j) d += p[static_cast<size_t>(i) * seq + j] * std::abs(i - j);
    return d;
  });
}

double attentionMse(const float* a, const float* b, int seq, std::span<const uint8_t> rows) {
  return meanOverRows(seq, rows, [&](int i) {
    const float* ar = a + static_cast<size_t>(i) * seq;
    const float* br = b + static_cast<size_t>(i) * seq;
    return laneSum(seq, [&](int64_t j) {
             const double d = static_cast<double>(ar[j]) - br[j];
             return d * d;
           }) /
           seq;
  });
}

namespace {
// One row's Σ_j a ln(a / max(b, eps)) and/or Σ_j ½a ln(a/m) + ½b ln(b/m), m = ½(a + b),
// in double, a SIMD packet of keys at a time (Eigen's packet log; the selects
// below are blends, which Eigen 3.4's Array select() is not), in chunks of
// kChunk keys converted from float first. The same summation (per packet lane
// over the row, then across the lanes) whichever of the two is asked for, so
// attentionKlJs equals attentionKl and attentionJs bit for bit. A NaN in b makes
// the KL NaN (as max(NaN, eps) would); terms with a = 0 (or b = 0 for JS) count 0.
constexpr int kChunk = 256;

template <bool kKl, bool kJs>
void rowKlJs(const float* a, const float* b, int seq, double eps, double& kl, double& js) {
  namespace ei = Eigen::internal;
  using Packet = ei::packet_traits<double>::type;
  constexpr int W = int(sizeof(Packet) / sizeof(double));
  alignas(64) double p[kChunk + W], q[kChunk + W];
  const Packet zero = ei::pset1<Packet>(0.0), half = ei::pset1<Packet>(0.5),
               epsP = ei::pset1<Packet>(eps);
  Packet klAcc = zero, jsAcc = zero;
  for (int j0 = 0; j0 < seq; j0 += kChunk) {
    const int len = std::min(kChunk, seq - j0);
    Eigen::Map<Eigen::ArrayXd>(p, len) = Eigen::Map<const Eigen::ArrayXf>(a + j0, len).cast<double>();
    Eigen::Map<Eigen::ArrayXd>(q, len) = Eigen::Map<const Eigen::ArrayXf>(b + j0, len).cast<double>();
    const int padded = (len + W - 1) / W * W;
    for (int j = len; j < padded; ++j) p[j] = q[j] = 0.0;  // terms of 0 and 0: 0
    for (int j = 0; j < padded; j += W) {
      const Packet P = ei::pload<Packet>(p + j), Q = ei::pload<Packet>(q + j);
      const Packet pPositive = ei::pcmp_lt(zero, P);
      if constexpr (kKl) {
        const Packet qc = ei::pselect(ei::pcmp_lt(Q, epsP), epsP, Q);  // NaN < eps is false: NaN stays
        const Packet t = ei::pmul(P, ei::plog(ei::pdiv(P, qc)));
        klAcc = ei::padd(klAcc, ei::pand(pPositive, t));
      }
      if constexpr (kJs) {
        const Packet m = ei::pmul(half, ei::padd(P, Q));
        const Packet tp = ei::pmul(ei::pmul(half, P), ei::plog(ei::pdiv(P, m)));
        const Packet tq = ei::pmul(ei::pmul(half, Q), ei::plog(ei::pdiv(Q, m)));
        jsAcc = ei::padd(jsAcc, ei::padd(ei::pand(pPositive, tp), ei::pand(ei::pcmp_lt(zero, Q), tq)));
      }
    }
  }
  if constexpr (kKl) kl += ei::predux(klAcc);
  if constexpr (kJs) js += ei::predux(jsAcc);
}
}  // namespace

double attentionKl(const float* a, const float* b, int seq, std::span<const uint8_t> rows,
                   double eps) {
  return meanOverRows(seq, rows, [&](int i) {
    double kl = 0.0, unused = 0.0;
    rowKlJs<true, false>(a + size_t(i) * seq, b + size_t(i) * seq, seq, eps, kl, unused);
    return kl;
  });
}

double attentionJs(const float* a, const float* b, int seq, std::span<const uint8_t> rows) {
  return meanOverRows(seq, rows, [&](int i) {
    double unused = 0.0, js = 0.0;
    rowKlJs<false, true>(a + size_t(i) * seq, b + size_t(i) * seq, seq, 0.0, unused, js);
    return js;
  });
}

KlJs attentionKlJs(const float* a, const float* b, int seq, std::span<const uint8_t> rows,
                   double eps) {
  // Per-row values first, then the same row averaging as the two functions above.
  std::vector<double> kl(size_t(std::max(0, seq))), js(kl.size());
  for (int i = 0; i < seq; ++i) {
    if (!rows.empty() && (size_t(i) >= rows.size() || rows[size_t(i)] == 0)) continue;
    rowKlJs<true, true>(a + size_t(i) * seq, b + size_t(i) * seq, seq, eps, kl[size_t(i)],
                        js[size_t(i)]);
  }
  return {meanOverRows(seq, rows, [&](int i) { return kl[size_t(i)]; }),
          meanOverRows(seq, rows, [&](int i) { return js[size_t(i)]; })};
}

std::vector<double> headEntropies(const float* attention, int layers, int heads, int seq,
                                  std::span<const uint8_t> rows) {
  std::vector<double> out(static_cast<size_t>(layers) * heads);
  const size_t map = static_cast<size_t>(seq) * seq;
  for (size_t i = 0; i < out.size(); ++i) out[i] = attentionEntropy(attention + i * map, seq, rows);
  return out;
}

}  // namespace attn
