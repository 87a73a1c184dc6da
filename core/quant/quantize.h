// Quantizing weight tensors (formats in core/quant/formats.h) and measuring
// the error. Legend: w is [rows, cols] row-major float32, n = rows · cols.
#pragma once

#include <cstdint>
#include <vector>

#include "core/quant/formats.h"
#include "core/util/parallel.h"

namespace attn::quant {

// Reference implementation of every format: deterministic, blocks quantized
// independently (in parallel on `pool` when given). Errors: an invalid spec
// (see validate) or non-finite weights. mseHistory, when given, receives the
// k-means squared error after each Lloyd iteration of the first block.
Result<QuantizedTensor> quantize(const float* w, int64_t rows, int64_t cols, const Spec& spec,
                                 ThreadPool* pool = nullptr,
                                 std::vector<double>* mseHistory = nullptr);

// The scalar reference implementation of every format, single-threaded: the
// definition quantize() (vectorised where the CPU allows) is tested against.
Result<QuantizedTensor> quantizeRef(const float* w, int64_t rows, int64_t cols, const Spec& spec);

struct Histogram {
  double lo = 0.0, hi = 0.0;  // bin i covers [lo + i·width, lo + (i+1)·width), last bin closed
  std::vector<int64_t> counts;
  double width() const { return counts.empty() ? 0.0 : (hi - lo) / double(counts.size()); }
};
// Histogram of x over [lo, hi]; values outside are not counted. hi == lo gives one bin.
Histogram histogram(const float* x, int64_t n, int bins, double lo, double hi);

// Per-tensor error of a quantization: w against q.dequantize().
struct ErrorStats {
  double mse = 0.0;          // Σ(w − ŵ)² / n
  double sqnrDb = 0.0;       // 10·log10(Σw² / Σ(w − ŵ)²); +inf when exact
  double maxAbsError = 0.0;  // max |w − ŵ|
  int64_t bytesBefore = 0;   // float32 storage: 4n
  int64_t bytesAfter = 0;    // q.storageBytes()
  double bitsPerWeight = 0.0;
  Histogram weights;  // of w over [min w, max w]
  Histogram errors;   // of w − ŵ over [−m, m], m = max |w − ŵ|
  // The levels of the block holding the largest |w| (all 2^b codes, ascending,
  // duplicates removed): what a histogram of w can draw as its grid.
  std::vector<float> levels;
};
// Chunks run on `pool` when given; the result does not depend on it.
// bins = 0: the numbers only, no histograms.
ErrorStats errorStats(const float* w, const QuantizedTensor& q, int bins = 64,
                      ThreadPool* pool = nullptr);
// The same with ŵ = q.dequantize() already computed (saves dequantizing twice).
ErrorStats errorStats(const float* w, const QuantizedTensor& q, const std::vector<float>& deq,
                      int bins = 64, ThreadPool* pool = nullptr);
// Overwrites w (the values q was quantized from) with q.dequantize()'s values and
// returns errorStats(w, q, deq, 0, pool) of the original w — in one pass, without
// a second buffer (no histograms: they need both arrays).
ErrorStats dequantizeInPlace(float* w, const QuantizedTensor& q, ThreadPool* pool = nullptr);
// The same into another buffer: out[0..numel) = q.dequantize()'s values, w left
// as it is. out is w itself or does not overlap it (a partial overlap would
// overwrite weights before the statistics read them). Every element of out is written.
ErrorStats dequantizeInto(const float* w, const QuantizedTensor& q, float* out,
                          ThreadPool* pool = nullptr);

// quantize() and dequantizeInto(w, q, out, pool) in one pass over w: the same
// tensor, the same values in out and the same statistics, bit for bit. Uniform
// formats without clipping, per tensor or in blocks of a multiple of 8 values,
// take the one pass (the grid of a block, its codes, values and statistics while
// it is in L1); the others the two calls. On an error (an invalid spec, NaN/Inf
// weights) out may be partly written — with out == w, w too.
Result<QuantizedTensor> quantizeInto(const float* w, int64_t rows, int64_t cols, const Spec& spec,
                                     float* out, ErrorStats& stats, ThreadPool* pool = nullptr);

}  // namespace attn::quant
