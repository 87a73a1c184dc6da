// Quantization formats: every format this engine writes, with its formula,
// storage layout and bits per weight. One header, one table of traits; the
// code and the tests loop over the table.
//
// Legend: a weight matrix W is [R, C] = [out, in] row-major (a 1-D tensor is
// [1, n]); b = bits per code; G = group size (consecutive inputs of one row);
// n = R·C. A "block" is the set of weights that share parameters: the whole
// tensor, one row (output channel), or one group of G inputs of one row.
//
// Codes are stored as an LSB-first bit stream of b-bit unsigned integers in
// row-major order (code i occupies bits [i·b, (i+1)·b) of the stream); the last
// byte is zero-padded. Parameters are stored beside the codes:
//
// uniform, symmetric   w ≈ s · q,  q = clamp(round_half_even(w · (1/s)), −(2^(b−1)−1), 2^(b−1)−1)
//                      s = a / (2^(b−1)−1) per block in float32, a = max|w| of the block (or
//                      the clipped range, below); the reciprocal 1/s is taken in float32 as
//                      PyTorch's quantize_per_tensor/per_channel do. Stored code u = q + 2^(b−1)
//                      (the code 0 is never used: the grid is symmetric).
//                      Parameters: one float32 scale per block.
//                      bits/weight = b + 32/B (B = weights per block).
// uniform, asymmetric  w ≈ s · (u − z),  u = clamp(round_half_even(w · (1/s)) + z, 0, 2^b−1)
//                      As PyTorch's MinMaxObserver for quint8 (b = 8): lo = min(min w, 0),
//                      hi = max(max w, 0), s = max((hi − lo)/(2^b−1), float32 eps),
//                      z = clamp(−round_half_even(lo / s), 0, 2^b−1), all in float32.
//                      Parameters: one float32 scale and one uint8 zero point per block.
//                      bits/weight = b + 40/B.
//   Clipping (uniform only): none (the min/max above); percentile p: a (or lo, hi) from the
//   p-th percentile of |w| (or the (100−p)-th and p-th of w) of each block; mse: a (or lo, hi)
//   scaled by the factor in {1, 0.99, …, 0.20} that minimises the block's squared error.
// kmeans               w ≈ c[u], c = 2^b levels (sorted ascending) per tensor or per row,
//                      found by Lloyd's algorithm in one dimension: initial levels at the
//                      (k + ½)/2^b quantiles of the block's values (deterministic); each
//                      weight goes to the nearest level (a weight exactly half-way goes to the
//                      lower one); a level becomes the mean of its weights (a level without
//                      weights keeps its value); stops when no assignment changes or after
//                      kKMeansMaxIterations. Parameters: 2^b float32 levels per block.
//                      bits/weight = b + 32·2^b/B.
// log2                 w ≈ 0 (u = 0) or ±2^(e_max − (k − 1)) for u = k | sign·2^(b−1),
//                      k ∈ [1, 2^(b−1)−1]: powers of two below e_max = round(log2 max|w|) of
//                      the block; |w| is rounded in the log domain (k from round(e_max −
//                      log2|w|) + 1) and goes to 0 below 2^(e_min − ½), e_min the smallest
//                      exponent. Parameters: one int8 e_max per block. bits/weight = b + 8/B.
// binary (b = 1)       w ≈ α · (2u − 1), u = [w ≥ 0]; α = mean|w| of the block (XNOR-Net; the
//                      L2-optimal scale for sign codes). Parameters: float32 α per block.
//                      bits/weight = 1 + 32/B.
// ternary (b = 2)      w ≈ α · t, t = +1 (u = 1) if w > Δ, −1 (u = 2) if w < −Δ, else 0 (u = 0);
//                      Δ = 0.7 · mean|w|, α = mean of |w| over |w| > Δ (TWN, Li & Liu 2016).
//                      Parameters: float32 α per block. bits/weight = 2 + 32/B.
//
// Granularities: uniform supports tensor, channel and group; kmeans, log2, binary and ternary
// support tensor and channel (a block is the tensor or one row).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/util/result.h"

namespace attn::quant {

enum class Method { Uniform, KMeans, Log2, Binary, Ternary };
enum class Granularity { Tensor, Channel, Group };
enum class Clip { None, Percentile, Mse };

constexpr int kKMeansMaxIterations = 1000;  // each iteration costs O(2^b · log B)

struct Spec {
  Method method = Method::Uniform;
  int bits = 8;  // code width b
  Granularity granularity = Granularity::Channel;
  int groupSize = 128;       // G, for Granularity::Group
  bool symmetric = true;     // uniform: symmetric (no zero point) or affine
  Clip clip = Clip::None;    // uniform: range clipping
  double percentile = 99.9;  // for Clip::Percentile, in (50, 100]
};

// What a method allows; the code and the tests are driven by this table.
struct MethodTraits {
  Method method;
  const char* name;      // as on the command line: "uniform", "kmeans", …
  int minBits, maxBits;  // allowed b
  bool group;            // supports Granularity::Group
  const char* formula;   // one line, for reports and tooltips
};

inline constexpr MethodTraits kMethods[] = {
    {Method::Uniform, "uniform", 2, 8, true, "w = s·q (symmetric) or s·(u − z) (asymmetric)"},
    {Method::KMeans, "kmeans", 1, 8, false, "w = c[u], 2^b Lloyd levels"},
    {Method::Log2, "log2", 2, 8, false, "w = ±2^(e_max − k) or 0"},
    {Method::Binary, "binary", 1, 1, false, "w = α·sign(w), α = mean|w|"},
    {Method::Ternary, "ternary", 2, 2, false, "w = α·{−1, 0, +1}, Δ = 0.7·mean|w|"},
};

const MethodTraits& traits(Method m);
Result<Method> parseMethod(const std::string& name);
std::string granularityName(Granularity g);
// "tensor", "channel" or "group:G".
Result<Spec> parseGranularity(const std::string& text, Spec spec);
// A one-line description, e.g. "uniform 4-bit symmetric, group 128".
std::string describe(const Spec& spec);

// Checks the spec against a [rows, cols] tensor: bits within the method's range,
// granularity supported, G ≥ 1 dividing cols, percentile within (50, 100].
Status validate(const Spec& spec, int64_t rows, int64_t cols);

// Number of blocks that share parameters and weights per block.
int64_t blockCount(const Spec& spec, int64_t rows, int64_t cols);

// A quantized [rows, cols] tensor: packed codes and the parameters of its blocks.
struct QuantizedTensor {
  Spec spec;
  int64_t rows = 0, cols = 0;
  std::vector<uint8_t> packed;    // codes, b bits each, LSB-first bit stream
  std::vector<float> scales;      // uniform: s; binary / ternary: α  [blocks]
  std::vector<uint8_t> zeros;     // uniform asymmetric: z            [blocks]
  std::vector<int8_t> exponents;  // log2: e_max                      [blocks]
  std::vector<float> codebook;    // kmeans: 2^b sorted levels         [blocks, 2^b]
  int iterations = 0;             // kmeans: Lloyd iterations of the slowest block

  int64_t numel() const { return rows * cols; }
  uint32_t code(int64_t i) const;
  // Bytes of codes plus parameters, as stored.
  int64_t storageBytes() const;
  double bitsPerWeight() const { return numel() > 0 ? 8.0 * storageBytes() / numel() : 0.0; }
  // Reconstructed weights [rows, cols].
  std::vector<float> dequantize() const;
  // Reconstruction of block `block`'s code u (for the levels a block can take).
  float level(int64_t block, uint32_t u) const;
};

// Packs n codes of `bits` bits (each < 2^bits) into the LSB-first stream, and back.
std::vector<uint8_t> packCodes(const std::vector<uint32_t>& codes, int bits);
std::vector<uint32_t> unpackCodes(const std::vector<uint8_t>& packed, int bits, int64_t n);

}  // namespace attn::quant
