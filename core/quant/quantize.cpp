#include "core/quant/quantize.h"

#include <algorithm>
#include <atomic>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>
#include <mutex>
#include <numeric>
#include <type_traits>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

namespace attn::quant {

// ---- Spec, traits, packing ------------------------------------------------

const MethodTraits& traits(Method m) {
  for (const auto& t : kMethods)
    if (t.method == m) return t;
  return kMethods[0];
}

Result<Method> parseMethod(const std::string& name) {
  for (const auto& t : kMethods)
    if (name == t.name) return t.method;
  return makeError("unknown quantization method '" + name +
                   "' (expected uniform, kmeans, log2, binary or ternary)");
}

std::string granularityName(Granularity g) {
  switch (g) {
    case Granularity::Tensor:
      return "tensor";
    case Granularity::Channel:
      return "channel";
    case Granularity::Group:
      return "group";
  }
  return "?";
}

Result<Spec> parseGranularity(const std::string& text, Spec spec) {
  if (text == "tensor") {
    spec.granularity = Granularity::Tensor;
  } else if (text == "channel") {
    spec.granularity = Granularity::Channel;
  } else if (text.rfind("group:", 0) == 0) {
    const std::string n = text.substr(6);
    char* end = nullptr;
    const long g = std::strtol(n.c_str(), &end, 10);
    if (n.empty() || *end != '\0' || g < 1 || g > (1 << 24))
      return makeError("group size '" + n + "' is not a positive integer");
    spec.granularity = Granularity::Group;
    spec.groupSize = int(g);
  } else {
    return makeError("unknown granularity '" + text + "' (expected tensor, channel or group:G)");
  }
  return spec;
}

std::string describe(const Spec& s) {
  std::string d = std::string(traits(s.method).name) + " " + std::to_string(s.bits) + "-bit";
  if (s.method == Method::Uniform) d += s.symmetric ? " symmetric" : " asymmetric";
  d += s.granularity == Granularity::Group ? ", group " + std::to_string(s.groupSize)
                                           : ", per " + granularityName(s.granularity);
  if (s.method == Method::Uniform && s.clip == Clip::Percentile) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", s.percentile);
    d += std::string(", clipped at the ") + buf + "th percentile";
  } else if (s.method == Method::Uniform && s.clip == Clip::Mse) {
    d += ", MSE-optimal clipping";
  }
  return d;
}

Status validate(const Spec& s, int64_t rows, int64_t cols) {
  const MethodTraits& t = traits(s.method);
  if (s.bits < t.minBits || s.bits > t.maxBits)
    return makeError(std::string(t.name) + " quantization takes " +
                     (t.minBits == t.maxBits
                          ? std::to_string(t.minBits)
                          : std::to_string(t.minBits) + "–" + std::to_string(t.maxBits)) +
                     " bits, not " + std::to_string(s.bits));
  if (rows < 1 || cols < 1) return makeError("cannot quantize an empty tensor");
  if (s.granularity == Granularity::Group) {
    if (!t.group)
      return makeError(std::string(t.name) +
                       " quantization works per tensor or per channel, not per group");
    if (s.groupSize < 1 || cols % s.groupSize != 0)
      return makeError("group size " + std::to_string(s.groupSize) +
                       " does not divide the input dimension " + std::to_string(cols));
  }
  if (s.method == Method::Uniform && s.clip == Clip::Percentile &&
      !(s.percentile > 50.0 && s.percentile <= 100.0))
    return makeError("clipping percentile must be in (50, 100], not " +
                     std::to_string(s.percentile));
  return Ok{};
}

int64_t blockCount(const Spec& s, int64_t rows, int64_t cols) {
  switch (s.granularity) {
    case Granularity::Tensor:
      return 1;
    case Granularity::Channel:
      return rows;
    case Granularity::Group:
      return rows * (cols / std::max(1, s.groupSize));
  }
  return 1;
}

namespace {
// Codes (each < 2^bits, one per byte) into the LSB-first bit stream.
// Eight codes fill `bits` whole bytes: groups of eight pack independently, so
// large streams are packed in parallel chunks (the same bytes).
// Eight B-bit codes are B whole bytes (LSB first) for every width: the packers
// below go eight codes at a time, with the width known at compile time.
template <int B>
void packEights(const uint8_t* codes, size_t eights, uint8_t* out) {
  if constexpr (8 % B == 0) {  // byte by byte: vectorises better
    constexpr int per = 8 / B;
    for (size_t j = 0; j < eights * B; ++j) {
      unsigned v = 0;
      for (int t = 0; t < per; ++t) v |= unsigned(codes[j * per + size_t(t)]) << (t * B);
      out[j] = uint8_t(v);
    }
    return;
  }
  for (size_t g = 0; g < eights; ++g) {
    uint64_t v = 0;
    for (int t = 0; t < 8; ++t) v |= uint64_t(codes[g * 8 + size_t(t)]) << (t * B);
    for (int b = 0; b < B; ++b) out[g * B + size_t(b)] = uint8_t(v >> (8 * b));
  }
}
template <int B>
void unpackEights(const uint8_t* packed, int64_t eights, uint8_t* codes) {
  constexpr uint64_t mask = (uint64_t(1) << B) - 1;
  if constexpr (8 % B == 0) {
    constexpr int per = 8 / B;
    for (int64_t j = 0; j < eights * B; ++j) {
      const unsigned v = packed[j];
      for (int t = 0; t < per; ++t) codes[j * per + t] = uint8_t((v >> (t * B)) & mask);
    }
    return;
  }
  for (int64_t g = 0; g < eights; ++g) {
    uint64_t v = 0;
    for (int b = 0; b < B; ++b) v |= uint64_t(packed[g * B + b]) << (8 * b);
    for (int t = 0; t < 8; ++t) codes[g * 8 + t] = uint8_t((v >> (t * B)) & mask);
  }
}
template <class Fn>
void withWidth(int bits, Fn fn) {  // fn(std::integral_constant<int, bits>) for 1..7
  switch (bits) {
    case 1: return fn(std::integral_constant<int, 1>());
    case 2: return fn(std::integral_constant<int, 2>());
    case 3: return fn(std::integral_constant<int, 3>());
    case 4: return fn(std::integral_constant<int, 4>());
    case 5: return fn(std::integral_constant<int, 5>());
    case 6: return fn(std::integral_constant<int, 6>());
    case 7: return fn(std::integral_constant<int, 7>());
    default: return;
  }
}

std::vector<uint8_t> packBytes(std::vector<uint8_t> codes, int bits, ThreadPool* pool = nullptr) {
  if (bits == 8) return codes;
  const size_t n = codes.size();
  std::vector<uint8_t> out((n * size_t(bits) + 7) / 8, 0);
  auto range = [&](size_t c0, size_t c1) {  // c0 a multiple of 8
    uint64_t acc = 0;
    int have = 0;
    size_t o = c0 / 8 * size_t(bits);
    const size_t eights = (c1 - c0) / 8;  // whole groups first; the loop below packs the rest
    withWidth(bits, [&](auto b) { packEights<decltype(b)::value>(codes.data() + c0, eights, out.data() + o); });
    c0 += eights * 8;
    o += eights * size_t(bits);
    for (size_t i = c0; i < c1; ++i) {
      acc |= uint64_t(codes[i]) << have;
      have += bits;
      while (have >= 8) {
        out[o++] = uint8_t(acc);
        acc >>= 8;
        have -= 8;
      }
    }
    if (have > 0) out[o] = uint8_t(acc);  // only after the last code
  };
  if (pool != nullptr && n > 65536)
    pool->chunks(int64_t((n + 7) / 8), [&](int64_t g0, int64_t g1) {
      range(size_t(g0) * 8, std::min(n, size_t(g1) * 8));
    });
  else
    range(0, n);
  return out;
}

// Codes [i0, i0 + len) (i0 a multiple of 8) into their bytes of the stream out:
// the bytes packBytes writes for them; a len that is no multiple of 8 ends the
// stream. bits = 8: the codes are the bytes.
void packPiece(const uint8_t* codes, int64_t len, int bits, uint8_t* out, int64_t i0) {
  if (bits == 8) {
    if (codes != out + i0) std::memcpy(out + i0, codes, size_t(len));
    return;
  }
  const int64_t eights = len / 8;
  uint8_t* o = out + i0 / 8 * bits;
  withWidth(bits, [&](auto b) { packEights<decltype(b)::value>(codes, size_t(eights), o); });
  o += eights * bits;
  uint64_t acc = 0;
  int have = 0;
  for (int64_t i = eights * 8; i < len; ++i) {
    acc |= uint64_t(codes[i]) << have;
    have += bits;
    while (have >= 8) {
      *o++ = uint8_t(acc);
      acc >>= 8;
      have -= 8;
    }
  }
  if (have > 0) *o = uint8_t(acc);
}

// Calls fn(i, code) for the first n codes of a stream.
template <class Fn>
void forEachCode(const std::vector<uint8_t>& packed, int bits, int64_t n, Fn fn) {
  if (bits == 8) {
    for (int64_t i = 0; i < n; ++i) fn(i, uint32_t(packed[size_t(i)]));
    return;
  }
  const uint64_t mask = (uint64_t(1) << bits) - 1;
  uint64_t acc = 0;
  int have = 0;
  size_t in = 0;
  for (int64_t i = 0; i < n; ++i) {
    while (have < bits) {
      acc |= uint64_t(packed[in++]) << have;
      have += 8;
    }
    fn(i, uint32_t(acc & mask));
    acc >>= bits;
    have -= bits;
  }
}
}  // namespace

std::vector<uint8_t> packCodes(const std::vector<uint32_t>& codes, int bits) {
  return packBytes(std::vector<uint8_t>(codes.begin(), codes.end()), bits);
}

std::vector<uint32_t> unpackCodes(const std::vector<uint8_t>& packed, int bits, int64_t n) {
  std::vector<uint32_t> out(size_t(std::max<int64_t>(0, n)), 0);
  forEachCode(packed, bits, n, [&](int64_t i, uint32_t c) { out[size_t(i)] = c; });
  return out;
}

uint32_t QuantizedTensor::code(int64_t i) const {
  const int b = spec.bits;
  if (b == 8) return packed[size_t(i)];
  uint32_t c = 0;
  const uint64_t first = uint64_t(i) * b;
  for (int k = 0; k < b; ++k) {
    const uint64_t bit = first + k;
    c |= uint32_t((packed[bit >> 3] >> (bit & 7)) & 1u) << k;
  }
  return c;
}

int64_t QuantizedTensor::storageBytes() const {
  return int64_t(packed.size()) + 4 * int64_t(scales.size()) + int64_t(zeros.size()) +
         int64_t(exponents.size()) + 4 * int64_t(codebook.size());
}

float QuantizedTensor::level(int64_t block, uint32_t u) const {
  const int b = spec.bits;
  switch (spec.method) {
    case Method::Uniform:
      if (spec.symmetric) return scales[size_t(block)] * float(int(u) - (1 << (b - 1)));
      return scales[size_t(block)] * float(int(u) - int(zeros[size_t(block)]));
    case Method::KMeans:
      return codebook[size_t(block) * (size_t(1) << b) + u];
    case Method::Log2: {
      const uint32_t sign = 1u << (b - 1), k = u & (sign - 1);
      if (k == 0) return 0.0f;
      const float mag = std::ldexp(1.0f, int(exponents[size_t(block)]) - int(k - 1));
      return (u & sign) ? -mag : mag;
    }
    case Method::Binary:
      return u ? scales[size_t(block)] : -scales[size_t(block)];
    case Method::Ternary:
      return u == 1 ? scales[size_t(block)] : u == 2 ? -scales[size_t(block)] : 0.0f;
  }
  return 0.0f;
}

namespace {
void dequantizeRange(const QuantizedTensor& q, int64_t i0, int64_t len, float* y,
                     std::vector<float>& table, int64_t& tableBlock, std::vector<uint8_t>& codes);
}  // namespace

std::vector<float> QuantizedTensor::dequantize() const {  // the same path as dequantizeInPlace
  const int64_t n = numel();
  std::vector<float> out(size_t(std::max<int64_t>(0, n)));
  std::vector<float> table;
  std::vector<uint8_t> codes;
  int64_t tableBlock = -1;
  if (n > 0) dequantizeRange(*this, 0, n, out.data(), table, tableBlock, codes);
  return out;
}

// ---- Quantizers (one block = `len` contiguous weights) ----------------------

namespace {

constexpr float kEps = FLT_EPSILON;  // PyTorch's MinMaxObserver eps (float32 epsilon)

// Parameters and codes of one block.
struct BlockOut {
  float scale = 0.0f;
  uint8_t zero = 0;
  int8_t exponent = 0;
  std::vector<float> levels;  // kmeans
};

float roundHalfEven(float x) { return std::nearbyint(x); }  // default rounding mode

// Uniform with a given range: symmetric (a) or asymmetric ([lo, hi]).
struct UniformGrid {
  float scale, inv;
  int zero, qmin, qmax, offset;  // stored u = q + offset
};

UniformGrid symmetricGrid(float a, int bits) {
  const int qmax = (1 << (bits - 1)) - 1;
  const float s = std::max(a / float(qmax), kEps);
  return {s, 1.0f / s, 0, -qmax, qmax, 1 << (bits - 1)};
}

UniformGrid affineGrid(float lo, float hi, int bits) {
  const int qmax = (1 << bits) - 1;
  lo = std::min(lo, 0.0f);
  hi = std::max(hi, 0.0f);
  const float s = std::max((hi - lo) / float(qmax), kEps);
  const int z = std::clamp(int(-roundHalfEven(lo / s)), 0, qmax);
  return {s, 1.0f / s, z, 0, qmax, 0};
}

// Clamped in float before the conversion, so far-out weights cannot overflow.
inline int quantizeOne(float w, const UniformGrid& g) {
  const float r =
      std::clamp(roundHalfEven(w * g.inv), float(g.qmin - g.zero), float(g.qmax - g.zero));
  return int(r) + g.zero;
}

#if defined(__AVX2__)
// min and max of w[0, n), 8 lanes at a time.
void minMaxAvx2(const float* w, int64_t n, float* mnOut, float* mxOut) {
  __m256 mn = _mm256_set1_ps(w[0]), mx = mn;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 x = _mm256_loadu_ps(w + i);
    mn = _mm256_min_ps(mn, x);
    mx = _mm256_max_ps(mx, x);
  }
  alignas(32) float a[8], b[8];
  _mm256_store_ps(a, mn);
  _mm256_store_ps(b, mx);
  float lo = a[0], hi = b[0];
  for (int k = 1; k < 8; ++k) lo = std::min(lo, a[k]), hi = std::max(hi, b[k]);
  for (; i < n; ++i) lo = std::min(lo, w[i]), hi = std::max(hi, w[i]);
  *mnOut = lo;
  *mxOut = hi;
}

#endif

// Whether no value is NaN or ±Inf. Eight at a time with AVX2: GCC keeps the
// plain loop scalar (a compare and a setb per weight), and as the first read of
// each block it was the most expensive step of re-quantizing a matrix.
bool allFinite(const float* x, int64_t n) {
  int64_t i = 0;
  bool bad = false;
#if defined(__AVX2__)
  const __m256 magnitude = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256 largest = _mm256_set1_ps(FLT_MAX);
  __m256 any = _mm256_setzero_ps();
  for (; i + 8 <= n; i += 8)  // |x| > FLT_MAX or unordered (NaN)
    any = _mm256_or_ps(any, _mm256_cmp_ps(_mm256_and_ps(_mm256_loadu_ps(x + i), magnitude),
                                          largest, _CMP_NLE_UQ));
  bad = _mm256_movemask_ps(any) != 0;
#endif
  for (; i < n; ++i) bad |= !(std::fabs(x[i]) <= FLT_MAX);
  return !bad;
}

#if defined(__AVX2__)
// The same codes as quantizeOne(w[i], g) + g.offset, 8 at a time.
void quantizeCodesAvx2(const float* w, int64_t n, const UniformGrid& g, uint8_t* out) {
  const __m256 inv = _mm256_set1_ps(g.inv);
  const __m256 lo = _mm256_set1_ps(float(g.qmin - g.zero)),
               hi = _mm256_set1_ps(float(g.qmax - g.zero));
  const __m256i add = _mm256_set1_epi32(g.zero + g.offset);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 r = _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(w + i), inv),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    r = _mm256_min_ps(_mm256_max_ps(r, lo), hi);
    const __m256i q = _mm256_add_epi32(_mm256_cvtps_epi32(r), add);
    const __m128i p16 = _mm_packus_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(out + i), _mm_packus_epi16(p16, p16));
  }
  for (; i < n; ++i) out[i] = uint8_t(quantizeOne(w[i], g) + g.offset);
}
#endif

inline float dequantizeOne(int q, const UniformGrid& g) { return g.scale * float(q - g.zero); }

// Stored codes (quantizeOne + offset) and the dequantized values (dequantizeOne)
// of w[0, n) on grid g, 8 at a time with AVX2. The value is scale · r, r the
// clamped rounded w / scale: the same float as scale · float(q − zero), since
// r + 0 is that integer exactly (+0 turns a rounded −0 into the +0 it would be).
void codesAndValues(const float* w, int64_t n, const UniformGrid& g, uint8_t* codes, float* y) {
  int64_t i = 0;
#if defined(__AVX2__)
  const __m256 inv = _mm256_set1_ps(g.inv), scale = _mm256_set1_ps(g.scale);
  const __m256 lo = _mm256_set1_ps(float(g.qmin - g.zero)),
               hi = _mm256_set1_ps(float(g.qmax - g.zero));
  const __m256i add = _mm256_set1_epi32(g.zero + g.offset);
  for (; i + 8 <= n; i += 8) {
    __m256 r = _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(w + i), inv),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    r = _mm256_add_ps(_mm256_min_ps(_mm256_max_ps(r, lo), hi), _mm256_setzero_ps());
    _mm256_storeu_ps(y + i, _mm256_mul_ps(r, scale));
    const __m256i q = _mm256_add_epi32(_mm256_cvtps_epi32(r), add);
    const __m128i p16 = _mm_packus_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(codes + i), _mm_packus_epi16(p16, p16));
  }
#endif
  for (; i < n; ++i) {
    const int q = quantizeOne(w[i], g);
    codes[i] = uint8_t(q + g.offset);
    y[i] = dequantizeOne(q, g);
  }
}

double gridError(const float* w, int64_t len, const UniformGrid& g) {
  double e = 0.0;
  for (int64_t i = 0; i < len; ++i) {
    const double d = double(w[i]) - dequantizeOne(quantizeOne(w[i], g), g);
    e += d * d;
  }
  return e;
}

// Value at percentile p (in [0, 100]) of v (modified).
float percentileOf(std::vector<float>& v, double p) {
  const size_t k =
      std::min(v.size() - 1, size_t(std::max(0.0, std::ceil(p / 100.0 * double(v.size())) - 1)));
  std::nth_element(v.begin(), v.begin() + std::ptrdiff_t(k), v.end());
  return v[k];
}

UniformGrid uniformGridFor(const float* w, int64_t len, const Spec& s, bool fast) {
  float mn = w[0], mx = w[0];
  bool scanned = false;
#if defined(__AVX2__)
  if (fast) minMaxAvx2(w, len, &mn, &mx), scanned = true;
#endif
  if (!scanned)  // the reference, or a build without AVX2
    for (int64_t i = 0; i < len; ++i) {
      mn = std::min(mn, w[i]);
      mx = std::max(mx, w[i]);
    }
  float amax = std::max(-mn, mx);
  if (s.clip == Clip::Percentile) {
    if (s.symmetric) {
      std::vector<float> a(static_cast<size_t>(len));
      for (int64_t i = 0; i < len; ++i) a[size_t(i)] = std::fabs(w[i]);
      amax = percentileOf(a, s.percentile);
    } else {
      std::vector<float> v(w, w + len);
      mx = percentileOf(v, s.percentile);
      mn = percentileOf(v, 100.0 - s.percentile);
    }
  }
  auto grid = [&](double f) {
    return s.symmetric ? symmetricGrid(float(amax * f), s.bits)
                       : affineGrid(float(mn * f), float(mx * f), s.bits);
  };
  if (s.clip != Clip::Mse) return grid(1.0);
  UniformGrid best = grid(1.0);
  double bestErr = gridError(w, len, best);
  for (int k = 1; k <= 80; ++k) {  // factors 0.99 … 0.20
    const UniformGrid g = grid(1.0 - 0.01 * k);
    const double e = gridError(w, len, g);
    if (e < bestErr) bestErr = e, best = g;
  }
  return best;
}

void quantizeUniform(const float* w, int64_t len, const Spec& s, uint8_t* codes, BlockOut& out,
                     bool fast) {
  const UniformGrid g = uniformGridFor(w, len, s, fast);
#if defined(__AVX2__)
  if (fast) {
    quantizeCodesAvx2(w, len, g, codes);
    out.scale = g.scale;
    out.zero = uint8_t(g.zero);
    return;
  }
#endif
  for (int64_t i = 0; i < len; ++i) codes[i] = uint8_t(quantizeOne(w[i], g) + g.offset);
  out.scale = g.scale;
  out.zero = uint8_t(g.zero);
}

// Sorts float32 values ascending: LSD radix sort on order-preserving keys
// (3 passes of 11 bits) for large blocks, std::sort for small ones.
void sortFloats(std::vector<float>& v) {
  if (v.size() < 4096) {
    std::sort(v.begin(), v.end());
    return;
  }
  std::vector<uint32_t> a(v.size()), b(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    uint32_t u;
    std::memcpy(&u, &v[i], 4);
    a[i] = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
  }
  for (int pass = 0; pass < 3; ++pass) {
    const int shift = 11 * pass;
    size_t count[2049] = {};
    for (uint32_t x : a) ++count[((x >> shift) & 2047u) + 1];
    for (int k = 0; k < 2048; ++k) count[k + 1] += count[k];
    for (uint32_t x : a) b[count[(x >> shift) & 2047u]++] = x;
    a.swap(b);
  }
  for (size_t i = 0; i < v.size(); ++i) {
    const uint32_t x = a[i];
    const uint32_t u = (x & 0x80000000u) ? (x & 0x7fffffffu) : ~x;
    std::memcpy(&v[i], &u, 4);
  }
}

// Lloyd's algorithm in 1-D on sorted values with prefix sums: each iteration
// costs O(K log n). Clusters are contiguous ranges of the sorted values.
void quantizeKMeans(const float* w, int64_t len, const Spec& s, uint8_t* codes, BlockOut& out,
                    int* iterations, std::vector<double>* history, bool fast) {
  const int K = 1 << s.bits;
  std::vector<float> v(w, w + len);
  sortFloats(v);
  // Prefix sums (and of squares, for the error history only).
  std::vector<double> sum(size_t(len) + 1, 0.0), sq(history ? size_t(len) + 1 : 0, 0.0);
  for (int64_t i = 0; i < len; ++i) sum[size_t(i) + 1] = sum[size_t(i)] + v[size_t(i)];
  if (history)
    for (int64_t i = 0; i < len; ++i)
      sq[size_t(i) + 1] = sq[size_t(i)] + double(v[size_t(i)]) * v[size_t(i)];
  std::vector<float> c(static_cast<size_t>(K));
  for (int k = 0; k < K; ++k)
    c[size_t(k)] = v[std::min(size_t(len) - 1, size_t((k + 0.5) / K * double(len)))];
  std::vector<int64_t> ends(size_t(K), -1), prev;
  auto assign = [&] {  // ends[k] = one past the last value of cluster k
    for (int k = 0; k + 1 < K; ++k) {
      const float mid = c[size_t(k)] + 0.5f * (c[size_t(k) + 1] - c[size_t(k)]);
      ends[size_t(k)] = std::upper_bound(v.begin(), v.end(), mid) - v.begin();
    }
    ends[size_t(K) - 1] = len;
  };
  auto error = [&] {
    double e = 0.0;
    int64_t b = 0;
    for (int k = 0; k < K; ++k) {
      const int64_t en = std::max(b, ends[size_t(k)]);
      const double ck = c[size_t(k)];
      e += (sq[size_t(en)] - sq[size_t(b)]) - 2 * ck * (sum[size_t(en)] - sum[size_t(b)]) +
           double(en - b) * ck * ck;
      b = en;
    }
    return e / double(len);
  };
  int it = 0;
  assign();
  while (it < kKMeansMaxIterations) {
    int64_t b = 0;
    for (int k = 0; k < K; ++k) {  // update: each level the mean of its values
      const int64_t en = std::max(b, ends[size_t(k)]);
      if (en > b) c[size_t(k)] = float((sum[size_t(en)] - sum[size_t(b)]) / double(en - b));
      b = en;
    }
    std::sort(c.begin(), c.end());
    ++it;
    prev = ends;
    assign();
    if (history) history->push_back(error());
    if (ends == prev) break;  // no assignment changed
  }
  *iterations = it;
  std::vector<float> mids(size_t(K) - 1);
  for (int k = 0; k + 1 < K; ++k)
    mids[size_t(k)] = c[size_t(k)] + 0.5f * (c[size_t(k) + 1] - c[size_t(k)]);
  // code = number of midpoints strictly below w (half-way goes to the lower level):
  // a branch-free count, since the levels are few.
  const int M = K - 1;
  int64_t i = 0;
#if defined(__AVX2__)
  if (fast)
    for (; i + 8 <= len; i += 8) {
      const __m256 x = _mm256_loadu_ps(w + i);
      __m256i count = _mm256_setzero_si256();
      for (int k = 0; k < M; ++k)  // the mask is −1 where mid < x
        count = _mm256_sub_epi32(count, _mm256_castps_si256(_mm256_cmp_ps(
                                            _mm256_set1_ps(mids[size_t(k)]), x, _CMP_LT_OQ)));
      const __m128i p16 =
          _mm_packus_epi32(_mm256_castsi256_si128(count), _mm256_extracti128_si256(count, 1));
      _mm_storel_epi64(reinterpret_cast<__m128i*>(codes + i), _mm_packus_epi16(p16, p16));
    }
#endif
  for (; i < len; ++i)
    codes[i] = uint8_t(std::lower_bound(mids.begin(), mids.end(), w[i]) - mids.begin());
  out.levels = std::move(c);
}

void quantizeLog2(const float* w, int64_t len, const Spec& s, uint8_t* codes, BlockOut& out) {
  float amax = 0.0f;
  for (int64_t i = 0; i < len; ++i) amax = std::max(amax, std::fabs(w[i]));
  const int emax =
      amax > 0 ? std::clamp(int(std::nearbyint(std::log2(double(amax)))), -127, 127) : 0;
  const uint32_t sign = 1u << (s.bits - 1);
  const int M = int(sign) - 1;  // magnitudes 2^emax … 2^(emax − M + 1)
  for (int64_t i = 0; i < len; ++i) {
    if (w[i] == 0.0f || amax == 0.0f) {
      codes[i] = 0;
      continue;
    }
    const double t = double(emax) - std::log2(std::fabs(double(w[i])));
    const int k = std::max(1, int(std::nearbyint(t)) + 1);
    codes[i] = uint8_t(k > M ? 0u : uint32_t(k) | (w[i] < 0 ? sign : 0u));
  }
  out.exponent = int8_t(emax);
}

void quantizeBinary(const float* w, int64_t len, uint8_t* codes, BlockOut& out) {
  double a = 0.0;
  for (int64_t i = 0; i < len; ++i) {
    a += std::fabs(double(w[i]));
    codes[i] = w[i] >= 0.0f ? 1 : 0;
  }
  out.scale = float(a / double(len));
}

void quantizeTernary(const float* w, int64_t len, uint8_t* codes, BlockOut& out) {
  double a = 0.0;
  for (int64_t i = 0; i < len; ++i) a += std::fabs(double(w[i]));
  const double delta = 0.7 * a / double(len);
  double kept = 0.0;
  int64_t n = 0;
  for (int64_t i = 0; i < len; ++i) {
    const double x = w[i];
    codes[i] = x > delta ? 1 : x < -delta ? 2 : 0;
    if (std::fabs(x) > delta) kept += std::fabs(x), ++n;
  }
  out.scale = n > 0 ? float(kept / double(n)) : 0.0f;
}

}  // namespace

namespace {
// The error for weights of which one (at least) is NaN or ±Inf: the first one.
Error nonFiniteError(int64_t i, float value) {
  return makeError("weight " + std::to_string(i) + " is " + std::to_string(value) +
                   "; NaN/Inf weights cannot be quantized");
}
// The index of the first NaN / ±Inf of w[0, n) (n when none).
int64_t firstNonFinite(const float* w, int64_t n) {
  int64_t i = 0;
  while (i < n && std::isfinite(w[i])) ++i;
  return i;
}
Error nonFiniteError(const float* w, int64_t n) {
  const int64_t i = firstNonFinite(w, n);
  return nonFiniteError(i, i < n ? w[i] : 0.0f);
}

Result<QuantizedTensor> quantizeImpl(const float* w, int64_t rows, int64_t cols, const Spec& spec,
                                     ThreadPool* pool, std::vector<double>* mseHistory, bool fast) {
  if (Status st = validate(spec, rows, cols); !st) return st.error();
  const int64_t n = rows * cols;
  QuantizedTensor q;
  q.spec = spec;
  q.rows = rows;
  q.cols = cols;
  const int64_t blocks = blockCount(spec, rows, cols), len = n / blocks;
  std::vector<uint8_t> codes(static_cast<size_t>(n));
  std::vector<BlockOut> outs(static_cast<size_t>(blocks));
  std::vector<int> iters(static_cast<size_t>(blocks), 0);
  std::atomic<bool> nonFinite{false};
  auto one = [&](int64_t b) {
    const float* x = w + b * len;
    if (!allFinite(x, len)) {  // checked per block (in parallel); the first read of it
      nonFinite = true;
      return;
    }
    uint8_t* c = codes.data() + b * len;
    BlockOut& o = outs[size_t(b)];
    switch (spec.method) {
      case Method::Uniform:
        return quantizeUniform(x, len, spec, c, o, fast);
      case Method::KMeans:
        return quantizeKMeans(x, len, spec, c, o, &iters[size_t(b)], b == 0 ? mseHistory : nullptr,
                              fast);
      case Method::Log2:
        return quantizeLog2(x, len, spec, c, o);
      case Method::Binary:
        return quantizeBinary(x, len, c, o);
      case Method::Ternary:
        return quantizeTernary(x, len, c, o);
    }
  };
  if (pool != nullptr && blocks > 1)
    pool->run(blocks, one);
  else
    for (int64_t b = 0; b < blocks; ++b) one(b);
  if (nonFinite) return nonFiniteError(w, n);

  q.packed = packBytes(std::move(codes), spec.bits, pool);
  for (const BlockOut& o : outs) {
    switch (spec.method) {
      case Method::Uniform:
        q.scales.push_back(o.scale);
        if (!spec.symmetric) q.zeros.push_back(o.zero);
        break;
      case Method::KMeans:
        q.codebook.insert(q.codebook.end(), o.levels.begin(), o.levels.end());
        break;
      case Method::Log2:
        q.exponents.push_back(o.exponent);
        break;
      case Method::Binary:
      case Method::Ternary:
        q.scales.push_back(o.scale);
        break;
    }
  }
  q.iterations = *std::max_element(iters.begin(), iters.end());
  return q;
}
}  // namespace

Result<QuantizedTensor> quantize(const float* w, int64_t rows, int64_t cols, const Spec& spec,
                                 ThreadPool* pool, std::vector<double>* mseHistory) {
  return quantizeImpl(w, rows, cols, spec, pool, mseHistory, true);
}

Result<QuantizedTensor> quantizeRef(const float* w, int64_t rows, int64_t cols, const Spec& spec) {
  return quantizeImpl(w, rows, cols, spec, nullptr, nullptr, false);
}

// ---- Error statistics ------------------------------------------------------

Histogram histogram(const float* x, int64_t n, int bins, double lo, double hi) {
  Histogram h;
  h.lo = lo;
  h.hi = hi;
  h.counts.assign(size_t(std::max(1, hi > lo ? bins : 1)), 0);
  const double width = hi > lo ? (hi - lo) / double(h.counts.size()) : 1.0;
  const int64_t last = int64_t(h.counts.size()) - 1;
  for (int64_t i = 0; i < n; ++i) {
    const double v = x[i];
    if (!(v >= lo && v <= hi)) continue;
    h.counts[size_t(std::min(last, int64_t((v - lo) / width)))]++;
  }
  return h;
}

ErrorStats errorStats(const float* w, const QuantizedTensor& q, int bins, ThreadPool* pool) {
  return errorStats(w, q, q.dequantize(), bins, pool);
}

namespace {
// Pass 1 of the error statistics over one chunk: sums, ranges, the largest |w|.
struct Part {
  double sig = 0.0, noise = 0.0, maxErr = 0.0;
  float maxErrF = 0.0f, mn = 0.0f, mx = 0.0f, amax = -1.0f;
  int64_t argmax = 0;
};

// kLanes independent accumulators (the compiler vectorises them), merged in lane
// order: the same result for the same chunks, whatever the machine. A chunk may
// be fed in pieces whose lengths are multiples of kLanes (the last one excepted):
// the lanes then see the same values in the same order as in one piece.
class Lanes {
 public:
  static constexpr int kLanes = 8;
  explicit Lanes(float first) {
    for (int k = 0; k < kLanes; ++k) mn_[k] = mx_[k] = first, amax_[k] = -1.0f;
    part_.mn = part_.mx = first;
  }
  // x[0..len), y[0..len) are weights and dequantized values at indices i0…; a
  // len that is not a multiple of kLanes ends the chunk (its tail is scalar).
  void add(const float* x, const float* y, int64_t i0, int64_t len) {
    int64_t i = 0;
    for (; i + kLanes <= len; i += kLanes)
      for (int k = 0; k < kLanes; ++k) {
        const float a = x[i + k], b = y[i + k];
        const double d = double(a) - double(b);
        sig_[k] += double(a) * a;
        noise_[k] += d * d;
        maxErr_[k] = std::max(maxErr_[k], std::fabs(d));
        maxErrF_[k] = std::max(maxErrF_[k], std::fabs(a - b));
        mn_[k] = std::min(mn_[k], a);
        mx_[k] = std::max(mx_[k], a);
        const bool more = std::fabs(a) > amax_[k];
        amax_[k] = more ? std::fabs(a) : amax_[k];
        arg_[k] = more ? i0 + i + k : arg_[k];
      }
    if (i == len) return;
    merge();
    for (; i < len; ++i) {
      const float a = x[i], b = y[i];
      const double d = double(a) - double(b);
      part_.sig += double(a) * a;
      part_.noise += d * d;
      part_.maxErr = std::max(part_.maxErr, std::fabs(d));
      part_.maxErrF = std::max(part_.maxErrF, std::fabs(a - b));
      part_.mn = std::min(part_.mn, a);
      part_.mx = std::max(part_.mx, a);
      if (std::fabs(a) > part_.amax) part_.amax = std::fabs(a), part_.argmax = i0 + i;
    }
  }
  Part finish() {
    if (!merged_) merge();
    return part_;
  }

 private:
  void merge() {
    merged_ = true;
    for (int k = 0; k < kLanes; ++k) {
      part_.sig += sig_[k];
      part_.noise += noise_[k];
      part_.maxErr = std::max(part_.maxErr, maxErr_[k]);
      part_.maxErrF = std::max(part_.maxErrF, maxErrF_[k]);
      part_.mn = std::min(part_.mn, mn_[k]);
      part_.mx = std::max(part_.mx, mx_[k]);
      if (amax_[k] > part_.amax || (amax_[k] == part_.amax && arg_[k] < part_.argmax))
        part_.amax = amax_[k], part_.argmax = arg_[k];
    }
  }
  double sig_[kLanes] = {}, noise_[kLanes] = {}, maxErr_[kLanes] = {};
  float maxErrF_[kLanes] = {}, mn_[kLanes], mx_[kLanes], amax_[kLanes];
  int64_t arg_[kLanes] = {};
  Part part_;
  bool merged_ = false;
};

// Chunks of [0, n) on the pool (one per thread) when n is large, else one.
void overChunks(int64_t n, ThreadPool* pool, const std::function<void(int64_t, int64_t)>& fn) {
  if (pool != nullptr && n > 65536)
    pool->chunks(n, fn);
  else
    fn(0, n);
}

// Adds a chunk's part to the parts before it (callers merge in chunk order: with
// more than two parts the double sums depend on the order).
void mergePart(Part& all, const Part& p) {
  all.sig += p.sig;
  all.noise += p.noise;
  all.maxErr = std::max(all.maxErr, p.maxErr);
  all.maxErrF = std::max(all.maxErrF, p.maxErrF);
  all.mn = std::min(all.mn, p.mn);
  all.mx = std::max(all.mx, p.mx);
  if (p.amax > all.amax || (p.amax == all.amax && p.argmax < all.argmax))
    all.amax = p.amax, all.argmax = p.argmax;
}

// The chunks the error statistics are summed over. They depend on the tensor's
// shape and spec only, not on the pool, and their parts are merged in chunk
// order, so the numbers are the same on any number of threads: about kChunk
// values each, whole blocks when a block is a multiple of 8 values (then each
// chunk's codes fill whole bytes, and quantizeInto packs them on its own), else
// runs of a multiple of 8 values (the last one excepted).
struct StatChunks {
  static constexpr int64_t kChunk = 65536;
  int64_t n = 0, size = 1, count = 0;  // chunk c: [c·size, min(n, (c + 1)·size))
  StatChunks(const Spec& s, int64_t rows, int64_t cols) : n(rows * cols) {
    const int64_t blocks = blockCount(s, rows, cols), per = blocks > 0 ? n / blocks : n;
    size = blocks > 1 && per % 8 == 0 ? std::max<int64_t>(1, kChunk / per) * per : kChunk;
    count = n > 0 ? (n + size - 1) / size : 0;
  }
  // fn(begin, end) for every chunk (in parallel on pool), merged in order; first =
  // the first value (the start of the ranges).
  Part run(ThreadPool* pool, float first, const std::function<Part(int64_t, int64_t)>& fn) const {
    std::vector<Part> parts(static_cast<size_t>(count));
    auto one = [&](int64_t c) { parts[size_t(c)] = fn(c * size, std::min(n, (c + 1) * size)); };
    if (pool != nullptr && count > 1)
      pool->run(count, one);
    else
      for (int64_t c = 0; c < count; ++c) one(c);
    Part all;
    all.mn = all.mx = first;
    for (const Part& p : parts) mergePart(all, p);
    return all;
  }
};

// The numbers of pass 1, and the levels of the block with the largest |w|.
ErrorStats finishStats(const QuantizedTensor& q, const Part& all) {
  ErrorStats st;
  const int64_t n = q.numel();
  st.mse = n > 0 ? all.noise / double(n) : 0.0;
  st.sqnrDb = all.noise > 0 ? 10.0 * std::log10(all.sig / all.noise)
                            : std::numeric_limits<double>::infinity();
  st.maxAbsError = all.maxErr;
  st.bytesBefore = 4 * n;
  st.bytesAfter = q.storageBytes();
  st.bitsPerWeight = q.bitsPerWeight();
  const int64_t blocks = blockCount(q.spec, q.rows, q.cols);
  const int64_t block = n > 0 ? all.argmax / (n / blocks) : 0;
  for (uint32_t u = 0; u < (1u << q.spec.bits); ++u) {
    if (q.spec.method == Method::Uniform && q.spec.symmetric && u == 0) continue;  // unused code
    if (q.spec.method == Method::Ternary && u == 3) continue;
    if (q.spec.method == Method::Log2 && u == (1u << (q.spec.bits - 1))) continue;  // "−0"
    st.levels.push_back(q.level(block, u));
  }
  std::sort(st.levels.begin(), st.levels.end());
  st.levels.erase(std::unique(st.levels.begin(), st.levels.end()), st.levels.end());
  return st;
}

// Dequantized values of indices [i0, i0 + len) into y, with the same per-block
// tables as QuantizedTensor::dequantize (table/tableBlock: the last block's).
void dequantizeRange(const QuantizedTensor& q, int64_t i0, int64_t len, float* y,
                     std::vector<float>& table, int64_t& tableBlock, std::vector<uint8_t>& codes) {
  const int bits = q.spec.bits;
  const int64_t n = q.numel();
  const int64_t blocks = blockCount(q.spec, q.rows, q.cols);
  const int64_t per = blocks > 0 ? n / blocks : n;
  const uint8_t* c = q.packed.data() + i0;
  if (bits != 8) {  // unpack codes [i0, i0 + len)
    codes.resize(size_t(len));
    // Codes [from, to) bit by bit, from bit from·bits of the stream on.
    auto unpackBits = [&](int64_t from, int64_t to) {
      const uint64_t mask = (uint64_t(1) << bits) - 1;
      const uint64_t first = uint64_t(i0 + from) * uint64_t(bits);
      size_t in = size_t(first >> 3);
      int skip = int(first & 7);
      uint64_t acc = 0;
      int have = 0;
      for (int64_t k = from; k < to; ++k) {
        while (have < bits + skip) {
          acc |= uint64_t(q.packed[in++]) << have;
          have += 8;
        }
        if (skip) acc >>= skip, have -= skip, skip = 0;
        codes[size_t(k)] = uint8_t(acc & mask);
        acc >>= bits;
        have -= bits;
      }
    };
    // Up to a group of eight codes (whole bytes), whole groups, then the rest.
    const int64_t head = std::min(len, (8 - i0 % 8) % 8), eights = (len - head) / 8;
    unpackBits(0, head);
    withWidth(bits, [&](auto b) {
      unpackEights<decltype(b)::value>(q.packed.data() + (i0 + head) / 8 * bits, eights, codes.data() + head);
    });
    unpackBits(head + eights * 8, len);
    c = codes.data();
  }
  const uint32_t levels = 1u << bits;
  table.resize(levels);
  for (int64_t k = 0; k < len;) {
    const int64_t b = (i0 + k) / per, end = std::min(len, (b + 1) * per - i0);
    if (q.spec.method == Method::Uniform) {  // level()'s formula, without a table per block
      const float scale = q.scales[size_t(b)];
      const int zero = q.spec.symmetric ? 1 << (bits - 1) : int(q.zeros[size_t(b)]);
      for (; k < end; ++k) y[k] = scale * float(int(c[k]) - zero);
      continue;
    }
    if (b != tableBlock) {
      for (uint32_t u = 0; u < levels; ++u) table[u] = q.level(b, u);
      tableBlock = b;
    }
    for (; k < end; ++k) y[k] = table[c[k]];
  }
}
}  // namespace

ErrorStats dequantizeInPlace(float* w, const QuantizedTensor& q, ThreadPool* pool) {
  return dequantizeInto(w, q, w, pool);
}

ErrorStats dequantizeInto(const float* w, const QuantizedTensor& q, float* out, ThreadPool* pool) {
  const StatChunks chunks(q.spec, q.rows, q.cols);
  const Part all = chunks.run(pool, q.numel() > 0 ? w[0] : 0.0f, [&](int64_t b, int64_t e) {
    constexpr int64_t kPiece = 4096;  // a multiple of Lanes::kLanes, in L1
    float y[kPiece];
    std::vector<float> table;
    std::vector<uint8_t> codes;
    int64_t tableBlock = -1;
    Lanes lanes(w[b]);
    // Into `out` directly, unless it is `w` itself (in place: w is still read for
    // the statistics): the copy from L1 cost ~10 % of re-quantizing a matrix.
    const bool inPlace = out == w;
    for (int64_t i = b; i < e; i += kPiece) {
      const int64_t len = std::min(kPiece, e - i);
      float* piece = inPlace ? y : out + i;
      dequantizeRange(q, i, len, piece, table, tableBlock, codes);
      lanes.add(w + i, piece, i, len);
      if (inPlace) std::copy(y, y + len, out + i);
    }
    return lanes.finish();
  });
  return finishStats(q, all);
}

Result<QuantizedTensor> quantizeInto(const float* w, int64_t rows, int64_t cols, const Spec& spec,
                                     float* out, ErrorStats& stats, ThreadPool* pool) {
  if (Status st = validate(spec, rows, cols); !st) return st.error();
  const int64_t n = rows * cols, blocks = blockCount(spec, rows, cols), per = n / blocks;
  if (spec.method != Method::Uniform || spec.clip != Clip::None || n == 0 ||
      (blocks > 1 && per % 8 != 0)) {  // the two passes
    auto q = quantize(w, rows, cols, spec, pool);
    if (q) stats = dequantizeInto(w, *q, out, pool);
    return q;
  }
  const StatChunks chunks(spec, rows, cols);
  QuantizedTensor q;
  q.spec = spec;
  q.rows = rows;
  q.cols = cols;
  q.scales.assign(size_t(blocks), 0.0f);
  if (!spec.symmetric) q.zeros.assign(size_t(blocks), 0);
  q.packed.assign(size_t((n * spec.bits + 7) / 8), 0);
  UniformGrid tensorGrid{};
  if (blocks == 1) {  // the whole tensor's range first, a pass in chunks; then its grid
    std::vector<float> mn(size_t(chunks.count)), mx(size_t(chunks.count));
    std::vector<char> finite(size_t(chunks.count));
    auto range = [&](int64_t c) {
      const int64_t b = c * chunks.size, len = std::min(n, b + chunks.size) - b;
      finite[size_t(c)] = allFinite(w + b, len);
      if (!finite[size_t(c)]) return;
#if defined(__AVX2__)
      minMaxAvx2(w + b, len, &mn[size_t(c)], &mx[size_t(c)]);
#else
      const auto [lo, hi] = std::minmax_element(w + b, w + b + len);
      mn[size_t(c)] = *lo, mx[size_t(c)] = *hi;
#endif
    };
    if (pool != nullptr && chunks.count > 1)
      pool->run(chunks.count, range);
    else
      for (int64_t c = 0; c < chunks.count; ++c) range(c);
    if (std::find(finite.begin(), finite.end(), 0) != finite.end()) return nonFiniteError(w, n);
    const float lo = *std::min_element(mn.begin(), mn.end()),
                hi = *std::max_element(mx.begin(), mx.end());
    // uniformGridFor's grid(1.0) for this range
    tensorGrid = spec.symmetric ? symmetricGrid(std::max(-lo, hi), spec.bits)
                                : affineGrid(lo, hi, spec.bits);
    q.scales[0] = tensorGrid.scale;
    if (!spec.symmetric) q.zeros[0] = uint8_t(tensorGrid.zero);
  }
  // The first non-finite weight found, by index (its block is never written, so
  // its value is still there in place; other blocks may have been overwritten).
  std::atomic<int64_t> firstBad{n};
  const bool inPlace = out == w;
  // A chunk in pieces in L1: a block's grid when the block starts (chunks hold
  // whole blocks), its codes and values, the codes packed, the statistics.
  const Part all = chunks.run(pool, w[0], [&](int64_t c0, int64_t c1) {
    constexpr int64_t kPiece = 4096;  // a multiple of Lanes::kLanes and of 8 codes
    alignas(32) uint8_t codeBuf[kPiece];
    alignas(32) float y[kPiece];
    Lanes lanes(w[c0]);
    UniformGrid g = tensorGrid;
    int64_t gridBlock = blocks == 1 ? 0 : -1;
    for (int64_t i = c0; i < c1; i += kPiece) {
      const int64_t len = std::min(kPiece, c1 - i);
      float* values = inPlace ? y : out + i;
      uint8_t* codes = spec.bits == 8 ? q.packed.data() + i : codeBuf;
      for (int64_t k = 0; k < len;) {
        const int64_t b = (i + k) / per, end = std::min(len, (b + 1) * per - i);
        if (b != gridBlock) {  // read before any of the block is written (in place)
          const float* x = w + b * per;
          if (!allFinite(x, per)) {
            const int64_t bad = b * per + firstNonFinite(x, per);
            int64_t seen = firstBad.load();
            while (bad < seen && !firstBad.compare_exchange_weak(seen, bad)) {
            }
            return lanes.finish();
          }
          g = uniformGridFor(x, per, spec, true);
          q.scales[size_t(b)] = g.scale;
          if (!spec.symmetric) q.zeros[size_t(b)] = uint8_t(g.zero);
          gridBlock = b;
        }
        codesAndValues(w + i + k, end - k, g, codes + k, values + k);
        k = end;
      }
      packPiece(codes, len, spec.bits, q.packed.data(), i);
      lanes.add(w + i, values, i, len);
      if (inPlace) std::copy(y, y + len, out + i);
    }
    return lanes.finish();
  });
  if (const int64_t bad = firstBad.load(); bad < n) return nonFiniteError(bad, w[bad]);
  stats = finishStats(q, all);
  return q;
}

ErrorStats errorStats(const float* w, const QuantizedTensor& q, const std::vector<float>& r,
                      int bins, ThreadPool* pool) {
  const int64_t n = q.numel();
  const Part all = StatChunks(q.spec, q.rows, q.cols).run(pool, n > 0 ? w[0] : 0.0f, [&](int64_t b, int64_t e) {
    Lanes lanes(w[b]);
    lanes.add(w + b, r.data() + b, b, e - b);
    return lanes.finish();
  });
  ErrorStats st = finishStats(q, all);
  std::mutex mu;
  auto over = [&](const std::function<void(int64_t, int64_t)>& fn) { overChunks(n, pool, fn); };
  // Pass 2: both histograms (errors as float32 w − ŵ over [−m, m], m their largest
  // magnitude); bins = 0: none (a caller that only needs the numbers).
  if (bins > 0) {
  st.weights = histogram(nullptr, 0, bins, all.mn, all.mx);
  st.errors = histogram(nullptr, 0, bins, -double(all.maxErrF), double(all.maxErrF));
  over([&](int64_t b, int64_t e) {
    std::vector<int64_t> hw(st.weights.counts.size(), 0), he(st.errors.counts.size(), 0);
    // Bin = ⌊(x − lo) · (1 / width)⌋: a multiplication instead of a division per value
    // (a value within rounding of a bin edge may land in the neighbouring bin).
    const double iw = st.weights.width() > 0 ? 1.0 / st.weights.width() : 1.0;
    const double ie = st.errors.width() > 0 ? 1.0 / st.errors.width() : 1.0;
    const double loW = st.weights.lo, loE = st.errors.lo;
    const int lw = int(hw.size()) - 1, le = int(he.size()) - 1;
    const float* rp = r.data();
    for (int64_t i = b; i < e; ++i) {
      const int bw = int((double(w[i]) - loW) * iw);
      const int be = int((double(w[i] - rp[i]) - loE) * ie);
      hw[size_t(std::clamp(bw, 0, lw))]++;
      he[size_t(std::clamp(be, 0, le))]++;
    }
    std::lock_guard<std::mutex> lock(mu);
    for (size_t k = 0; k < hw.size(); ++k) st.weights.counts[k] += hw[k];
    for (size_t k = 0; k < he.size(); ++k) st.errors.counts[k] += he[k];
  });
  }
  return st;
}

}  // namespace attn::quant
