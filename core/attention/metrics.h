// Metrics on attention maps. A map is [S, S] row-major, row i = query i's
// distribution over keys. `rows` optionally restricts averages to valid query
// rows (1 = include), e.g. to skip padding; empty means all rows.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace attn {

// Mean over rows of −Σ_j p_ij ln p_ij (nats); 0·ln 0 = 0.
double attentionEntropy(const float* p, int seq, std::span<const uint8_t> rows = {});

// Mean over rows of Σ_j p_ij |i − j| (in tokens).
double meanAttentionDistance(const float* p, int seq, std::span<const uint8_t> rows = {});

// Mean squared difference over the included rows' cells.
double attentionMse(const float* a, const float* b, int seq, std::span<const uint8_t> rows = {});

// Mean over rows of KL(a_i ‖ b_i) = Σ_j a_ij ln(a_ij / b_ij), with b clamped to
// `eps` so a key that b ignores costs a large, finite amount.
double attentionKl(const float* a, const float* b, int seq, std::span<const uint8_t> rows = {},
                   double eps = 1e-12);

// Mean over rows of the Jensen–Shannon divergence (nats, in [0, ln 2]).
double attentionJs(const float* a, const float* b, int seq, std::span<const uint8_t> rows = {});

// Both of the above in one pass (the same numbers, bit for bit).
struct KlJs {
  double kl = 0.0, js = 0.0;
};
KlJs attentionKlJs(const float* a, const float* b, int seq, std::span<const uint8_t> rows = {},
                   double eps = 1e-12);

// Per-head entropy for a whole forward result: out[l * H + h].
std::vector<double> headEntropies(const float* attention, int layers, int heads, int seq,
                                  std::span<const uint8_t> rows = {});

}  // namespace attn
