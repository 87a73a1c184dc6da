#include "core/attention/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

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
    double s = 0.0;
    for (int j = 0; j < seq; ++j) {
      const double d = static_cast<double>(a[static_cast<size_t>(i) * seq + j]) -
                       b[static_cast<size_t>(i) * seq + j];
      s += d * d;
    }
    return s / seq;
  });
}

double attentionKl(const float* a, const float* b, int seq, std::span<const uint8_t> rows,
                   double eps) {
  return meanOverRows(seq, rows, [&](int i) {
    double kl = 0.0;
    for (int j = 0; j < seq; ++j) {
      const double p = a[static_cast<size_t>(i) * seq + j];
      const double q = std::max<double>(b[static_cast<size_t>(i) * seq + j], eps);
      if (p > 0.0) kl += p * std::log(p / q);
    }
    return kl;
  });
}

double attentionJs(const float* a, const float* b, int seq, std::span<const uint8_t> rows) {
  return meanOverRows(seq, rows, [&](int i) {
    double js = 0.0;
    for (int j = 0; j < seq; ++j) {
      const double p = a[static_cast<size_t>(i) * seq + j];
      const double q = b[static_cast<size_t>(i) * seq + j];
      const double m = 0.5 * (p + q);
      if (p > 0.0) js += 0.5 * p * std::log(p / m);
      if (q > 0.0) js += 0.5 * q * std::log(q / m);
    }
    return js;
  });
}

std::vector<double> headEntropies(const float* attention, int layers, int heads, int seq,
                                  std::span<const uint8_t> rows) {
  std::vector<double> out(static_cast<size_t>(layers) * heads);
  const size_t map = static_cast<size_t>(seq) * seq;
  for (size_t i = 0; i < out.size(); ++i) out[i] = attentionEntropy(attention + i * map, seq, rows);
  return out;
}

}  // namespace attn
