#include "core/sparse/prune.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <functional>
#include <numeric>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

namespace attn::sparse {

Bitmap Bitmap::ones(int64_t rows, int64_t cols) {
  Bitmap b;
  b.rows_ = rows;
  b.cols_ = cols;
  const int64_t n = rows * cols;
  b.words_.assign(size_t((n + 63) / 64), ~uint64_t(0));
  if (n % 64 != 0) b.words_.back() = (uint64_t(1) << (n % 64)) - 1;  // no bits past the end
  return b;
}

Bitmap Bitmap::fromWords(int64_t rows, int64_t cols, std::vector<uint64_t> words) {
  Bitmap b;
  b.rows_ = rows;
  b.cols_ = cols;
  b.words_ = std::move(words);
  return b;
}

int64_t Bitmap::count() const {
  int64_t c = 0;
  for (uint64_t w : words_) c += std::popcount(w);
  return c;
}

BlockDensity blockDensity(const Bitmap& m, int maxCells) {
  BlockDensity d;
  const int64_t R = m.rows(), C = m.cols();
  d.rowStep = std::max<int64_t>(1, (R + maxCells - 1) / maxCells);
  d.colStep = std::max<int64_t>(1, (C + maxCells - 1) / maxCells);
  d.rows = int((R + d.rowStep - 1) / d.rowStep);
  d.cols = int((C + d.colStep - 1) / d.colStep);
  // Kept weights per block (no division per weight: the column → block map is made once).
  std::vector<int64_t> kept(size_t(d.rows) * size_t(d.cols), 0);
  std::vector<int32_t> colBlock(static_cast<size_t>(C));
  for (int64_t c = 0; c < C; ++c) colBlock[size_t(c)] = int32_t(c / d.colStep);
  for (int64_t r = 0; r < R; ++r) {
    int64_t* row = kept.data() + size_t(r / d.rowStep) * size_t(d.cols);
    for (int64_t c = 0; c < C; ++c) row[colBlock[size_t(c)]] += m.get(r * C + c) ? 1 : 0;
  }
  d.values.assign(kept.size(), 0.0f);
  for (int br = 0; br < d.rows; ++br)
    for (int bc = 0; bc < d.cols; ++bc) {
      const int64_t h = std::min(d.rowStep, R - br * d.rowStep), w = std::min(d.colStep, C - bc * d.colStep);
      const size_t k = size_t(br) * size_t(d.cols) + size_t(bc);
      d.values[k] = float(kept[k]) / float(std::max<int64_t>(1, h * w));
    }
  return d;
}

std::vector<uint8_t> Bitmap::bytes() const {
  std::vector<uint8_t> out(static_cast<size_t>(size()));
  for (int64_t i = 0; i < size(); ++i) out[size_t(i)] = get(i) ? 1 : 0;
  return out;
}

Result<PruneSpec> parsePruneMethod(const std::string& text, PruneSpec s) {
  auto number = [](const std::string& t, int* out) {
    char* end = nullptr;
    const long v = std::strtol(t.c_str(), &end, 10);
    if (t.empty() || *end != '\0' || v < 1 || v > 65536) return false;
    *out = int(v);
    return true;
  };
  if (text == "magnitude") {
    s.method = PruneMethod::Magnitude;
  } else if (text == "global") {
    s.method = PruneMethod::Global;
  } else if (text == "rows") {
    s.method = PruneMethod::Rows;
  } else if (text == "cols") {
    s.method = PruneMethod::Cols;
  } else if (text.rfind("block:", 0) == 0) {
    s.method = PruneMethod::Block;
    if (!number(text.substr(6), &s.block))
      return makeError("block size '" + text.substr(6) + "' is not a positive integer");
  } else if (text.rfind("nm:", 0) == 0) {
    s.method = PruneMethod::NM;
    const std::string rest = text.substr(3);
    const size_t colon = rest.find(':');
    if (colon == std::string::npos || !number(rest.substr(0, colon), &s.n) ||
        !number(rest.substr(colon + 1), &s.m))
      return makeError("'" + text + "': expected nm:N:M, e.g. nm:2:4");
  } else {
    return makeError("unknown pruning method '" + text +
                     "' (expected magnitude, global, rows, cols, block:B or nm:N:M)");
  }
  return s;
}

std::string pruneMethodText(const PruneSpec& s) {
  switch (s.method) {
    case PruneMethod::Magnitude:
      return "magnitude";
    case PruneMethod::Global:
      return "global";
    case PruneMethod::Rows:
      return "rows";
    case PruneMethod::Cols:
      return "cols";
    case PruneMethod::Block:
      return "block:" + std::to_string(s.block);
    case PruneMethod::NM:
      return "nm:" + std::to_string(s.n) + ":" + std::to_string(s.m);
  }
  return "?";
}

Status validate(const PruneSpec& s, int64_t rows, int64_t cols) {
  if (s.method != PruneMethod::NM && !(s.sparsity >= 0.0 && s.sparsity < 1.0))
    return makeError("sparsity must be in [0, 1), not " + std::to_string(s.sparsity));
  if ((s.method == PruneMethod::Rows || s.method == PruneMethod::Cols) && s.norm != 1 &&
      s.norm != 2)
    return makeError("structured pruning ranks by the L1 or L2 norm, not L" +
                     std::to_string(s.norm));
  if (s.method == PruneMethod::Block && (s.block < 1 || rows % s.block != 0 || cols % s.block != 0))
    return makeError("block size " + std::to_string(s.block) + " does not divide the matrix [" +
                     std::to_string(rows) + ", " + std::to_string(cols) + "]");
  if (s.method == PruneMethod::NM) {
    if (s.n < 1 || s.n > s.m)
      return makeError("N:M needs 1 ≤ N ≤ M, not " + std::to_string(s.n) + ":" +
                       std::to_string(s.m));
    if (s.m > 64) return makeError("N:M groups of at most 64 inputs");
    if (cols % s.m != 0)
      return makeError("M = " + std::to_string(s.m) + " does not divide the input dimension " +
                       std::to_string(cols));
  }
  return Ok{};
}

namespace {

int64_t roundHalfEven(double x) { return int64_t(std::nearbyint(x)); }

inline uint32_t magnitudeKey(float w) {  // |w| as an order-preserving integer
  uint32_t u;
  std::memcpy(&u, &w, 4);
  return u & 0x7fffffffu;
}

// The k smallest magnitudes over `views` (in order): every key below `key`,
// and the first `atKey` weights whose key equals it.
struct Selection {
  uint32_t key = 0;
  int64_t atKey = 0;
};

Selection selectSmallest(const std::vector<MatrixView>& views, int64_t k) {
  Selection sel;
  if (k <= 0) return sel;
  std::vector<int64_t> hi(65536, 0), lo(65536, 0);
  for (const MatrixView& v : views)
    for (int64_t i = 0, n = v.rows * v.cols; i < n; ++i) hi[magnitudeKey(v.w[i]) >> 16]++;
  int64_t below = 0;
  uint32_t b = 0;
  while (below + hi[b] < k) below += hi[b++];
  for (const MatrixView& v : views)
    for (int64_t i = 0, n = v.rows * v.cols; i < n; ++i) {
      const uint32_t key = magnitudeKey(v.w[i]);
      if ((key >> 16) == b) lo[key & 0xffffu]++;
    }
  uint32_t l = 0;
  while (below + lo[l] < k) below += lo[l++];
  sel.key = (b << 16) | l;
  sel.atKey = k - below;
  return sel;
}

// Builds a mask from keep(i) in flat order.
template <class Keep>
Bitmap buildMask(int64_t rows, int64_t cols, Keep keep) {
  const int64_t n = rows * cols;
  std::vector<uint64_t> words(size_t((n + 63) / 64), 0);
  for (int64_t i = 0; i < n; ++i) words[size_t(i >> 6)] |= uint64_t(keep(i)) << (i & 63);
  return Bitmap::fromWords(rows, cols, std::move(words));
}

// Removes the k entries of smallest score (ties: lower index first).
std::vector<uint8_t> removeSmallest(const std::vector<double>& score, int64_t k) {
  std::vector<int64_t> order(score.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return score[size_t(a)] < score[size_t(b)]; });
  std::vector<uint8_t> removed(score.size(), 0);
  for (int64_t i = 0; i < k && i < int64_t(order.size()); ++i)
    removed[size_t(order[size_t(i)])] = 1;
  return removed;
}

// Keep bits of groups [g0, g1): bit j set when input j is among the N largest
// |w| of its group of M (ties: the lower index). M fixed at compile time for the
// common 4 and 8 (the loops unroll), runtime otherwise.
template <int kM>
void nmGroups(const float* w, int64_t g0, int64_t g1, int n, int mRuntime, uint64_t* keep) {
  const int m = kM > 0 ? kM : mRuntime;
  float mag[64];
  for (int64_t g = g0; g < g1; ++g) {
    const float* x = w + g * m;
    for (int j = 0; j < m; ++j) mag[j] = std::fabs(x[j]);
    uint64_t bits = 0;
    for (int j = 0; j < m; ++j) {  // rank: how many entries come before j
      int rank = 0;
      for (int q = 0; q < m; ++q) rank += (mag[q] > mag[j]) | ((mag[q] == mag[j]) & (q < j));
      bits |= uint64_t(rank < n) << j;
    }
    keep[g] = bits;
  }
}

Bitmap nmMask(const float* w, int64_t rows, int64_t cols, int n, int m, ThreadPool* pool) {
  std::vector<uint64_t> keepBits(size_t(rows * cols / m));  // bit j of group g: input j kept
  auto rowsTask = [&](int64_t r0, int64_t r1) {
    const int64_t g0 = r0 * (cols / m), g1 = r1 * (cols / m);
    if (m == 4)
      nmGroups<4>(w, g0, g1, n, m, keepBits.data());
    else if (m == 8)
      nmGroups<8>(w, g0, g1, n, m, keepBits.data());
    else
      nmGroups<0>(w, g0, g1, n, m, keepBits.data());
  };
  if (pool != nullptr)
    pool->chunks(rows, rowsTask);
  else
    rowsTask(0, rows);
  const int64_t total = rows * cols;
  std::vector<uint64_t> words(size_t((total + 63) / 64), 0);
  // The groups of words [k0, k1) into them: when m divides 64 no group straddles
  // two words, so word ranges are independent (in parallel); otherwise in order.
  auto wordsTask = [&](int64_t k0, int64_t k1) {
    const int64_t g0 = k0 * 64 / m, g1 = std::min<int64_t>(int64_t(keepBits.size()), k1 * 64 / m);
    for (int64_t g = g0; g < g1; ++g) {
      const int64_t bit = g * m;
      words[size_t(bit >> 6)] |= keepBits[size_t(g)] << (bit & 63);
      if ((bit & 63) + m > 64)  // a group straddling two words
        words[size_t((bit >> 6) + 1)] |= keepBits[size_t(g)] >> (64 - (bit & 63));
    }
  };
  if (pool != nullptr && 64 % m == 0)
    pool->chunks(int64_t(words.size()), wordsTask);
  else
    wordsTask(0, (int64_t(keepBits.size()) * m + 63) / 64 + 1);
  return Bitmap::fromWords(rows, cols, std::move(words));
}

}  // namespace

Result<std::vector<Bitmap>> globalMagnitudeMasks(const std::vector<MatrixView>& views,
                                                 double sparsity) {
  PruneSpec check;
  check.sparsity = sparsity;
  if (Status st = validate(check, 1, 1); !st) return st.error();
  int64_t total = 0;
  for (const auto& v : views) total += v.rows * v.cols;
  const Selection sel = selectSmallest(views, roundHalfEven(sparsity * double(total)));
  std::vector<Bitmap> out;
  int64_t tiesLeft = sel.atKey;
  for (const auto& v : views)
    out.push_back(buildMask(v.rows, v.cols, [&](int64_t i) {
      const uint32_t key = magnitudeKey(v.w[i]);
      if (key < sel.key) return false;
      if (key == sel.key && tiesLeft > 0) return --tiesLeft, false;
      return true;
    }));
  return out;
}

Result<Bitmap> pruneMask(const float* w, int64_t rows, int64_t cols, const PruneSpec& s,
                         ThreadPool* pool) {
  if (Status st = validate(s, rows, cols); !st) return st.error();
  switch (s.method) {
    case PruneMethod::Magnitude:
    case PruneMethod::Global: {
      auto masks = globalMagnitudeMasks({{w, rows, cols}}, s.sparsity);
      if (!masks) return masks.error();
      return std::move(masks->front());
    }
    case PruneMethod::Rows:
    case PruneMethod::Cols: {
      const bool byRow = s.method == PruneMethod::Rows;
      std::vector<double> norm(size_t(byRow ? rows : cols), 0.0);
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) {
          const double x = std::fabs(double(w[r * cols + c]));
          norm[size_t(byRow ? r : c)] += s.norm == 1 ? x : x * x;
        }
      const auto removed = removeSmallest(norm, roundHalfEven(s.sparsity * double(norm.size())));
      return buildMask(rows, cols,
                       [&](int64_t i) { return !removed[size_t(byRow ? i / cols : i % cols)]; });
    }
    case PruneMethod::Block: {
      const int64_t B = s.block, br = rows / B, bc = cols / B;
      std::vector<double> norm(size_t(br * bc), 0.0);
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) {
          const double x = w[r * cols + c];
          norm[size_t((r / B) * bc + c / B)] += x * x;
        }
      const auto removed = removeSmallest(norm, roundHalfEven(s.sparsity * double(norm.size())));
      return buildMask(rows, cols, [&](int64_t i) {
        return !removed[size_t((i / cols / B) * bc + (i % cols) / B)];
      });
    }
    case PruneMethod::NM:
      return nmMask(w, rows, cols, s.n, s.m, pool);
  }
  return makeError("unknown pruning method");
}

namespace {
// out[i] = mask kept i ? w[i] : +0 for the mask's words [k0, k1): a word at a
// time (all kept: copied, or nothing to do in place), otherwise 8 weights per
// byte of it (with AVX2: each weight ANDed with all-ones or zero).
void maskWords(const float* w, const Bitmap& mask, float* out, int64_t k0, int64_t k1) {
  const std::vector<uint64_t>& words = mask.words();
  const int64_t n = mask.size();
  for (int64_t k = k0; k < k1; ++k) {
    const uint64_t word = words[size_t(k)];
    const int64_t i0 = k * 64, len = std::min<int64_t>(64, n - i0);
    const float* x = w + i0;
    float* y = out + i0;
    if (word == ~uint64_t(0) && len == 64) {
      if (y != x) std::copy(x, x + 64, y);
      continue;
    }
    int64_t j = 0;
#if defined(__AVX2__)
    const __m256i bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    for (; j + 8 <= len; j += 8) {
      const __m256i b = _mm256_set1_epi32(int((word >> j) & 0xFFu));
      const __m256 keep = _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(b, bit), bit));
      _mm256_storeu_ps(y + j, _mm256_and_ps(_mm256_loadu_ps(x + j), keep));
    }
#endif
    for (; j < len; ++j) y[j] = ((word >> j) & 1u) ? x[j] : 0.0f;
  }
}

void overWords(const Bitmap& mask, ThreadPool* pool, const std::function<void(int64_t, int64_t)>& fn) {
  const int64_t words = int64_t(mask.words().size());
  if (pool != nullptr && words > 1024)
    pool->chunks(words, fn);
  else
    fn(0, words);
}
}  // namespace

void applyMask(float* w, const Bitmap& mask, ThreadPool* pool) {
  overWords(mask, pool, [&](int64_t k0, int64_t k1) { maskWords(w, mask, w, k0, k1); });
}

void maskedCopy(const float* w, const Bitmap& mask, float* out, ThreadPool* pool) {
  overWords(mask, pool, [&](int64_t k0, int64_t k1) { maskWords(w, mask, out, k0, k1); });
}

Csr toCsr(const float* w, const Bitmap& mask) {
  Csr c;
  c.rows = mask.rows();
  c.cols = mask.cols();
  c.rowPtr.assign(size_t(c.rows) + 1, 0);
  for (int64_t r = 0; r < c.rows; ++r) {
    for (int64_t j = 0; j < c.cols; ++j)
      if (mask.get(r * c.cols + j)) {
        c.colIdx.push_back(int32_t(j));
        c.values.push_back(w[r * c.cols + j]);
      }
    c.rowPtr[size_t(r) + 1] = int64_t(c.colIdx.size());
  }
  return c;
}

SparseBytes sparseBytes(const Bitmap& mask) {
  const int64_t nnz = mask.count();
  return {4 * mask.size(), (mask.size() + 7) / 8 + 4 * nnz, 8 * (mask.rows() + 1) + 8 * nnz};
}

}  // namespace attn::sparse
