// Weight pruning masks. A mask is a bitmap over a weight matrix [R, C] =
// [out, in] (1 = kept), row-major, 64 weights per word (bit i % 64 of word
// i / 64 is weight i).
//
//   magnitude   per tensor, unstructured: the k = round_half_even(s·R·C) weights of
//               smallest |w| are removed (torch.nn.utils.prune.l1_unstructured, amount s)
//   global      unstructured across every selected tensor of a model: the k smallest |w|
//               of all of them together (prune.global_unstructured with L1Unstructured)
//   rows        structured: the round_half_even(s·R) output rows with the smallest L1 or L2
//               norm (prune.ln_structured, n = 1 or 2, dim = 0)
//   cols        the same for input columns (ln_structured, dim = 1)
//   block:B     B×B blocks (B divides R and C), the round_half_even(s·blocks) with the
//               smallest L2 (Frobenius) norm
//   nm:N:M      in every group of M consecutive inputs of a row, the N largest |w| are kept
//               (M divides C); the sparsity is 1 − N/M whatever s says
// Ties: among equal magnitudes (or norms) the lower index — flat index; row,
// column or block index; across tensors, the earlier tensor — is removed first,
// and in N:M the lower index is kept first. (PyTorch orders ties as its topk
// happens to; the fixtures have none.) Selection is by a radix select on the
// float bits, linear in the number of weights, not a sort.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/util/parallel.h"
#include "core/util/result.h"

namespace attn::sparse {

class Bitmap {
 public:
  Bitmap() = default;
  static Bitmap ones(int64_t rows, int64_t cols);
  // words: ceil(rows·cols / 64) words, bits past the end zero.
  static Bitmap fromWords(int64_t rows, int64_t cols, std::vector<uint64_t> words);
  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  int64_t size() const { return rows_ * cols_; }
  bool get(int64_t i) const { return (words_[size_t(i >> 6)] >> (i & 63)) & 1u; }
  void set(int64_t i, bool on) {
    const uint64_t bit = uint64_t(1) << (i & 63);
    words_[size_t(i >> 6)] = on ? (words_[size_t(i >> 6)] | bit) : (words_[size_t(i >> 6)] & ~bit);
  }
  int64_t count() const;  // kept weights
  double sparsity() const { return size() > 0 ? 1.0 - double(count()) / double(size()) : 0.0; }
  const std::vector<uint64_t>& words() const { return words_; }
  // As uint8 0/1, row-major (for .npy / safetensors dumps).
  std::vector<uint8_t> bytes() const;

 private:
  int64_t rows_ = 0, cols_ = 0;
  std::vector<uint64_t> words_;
};

// A spy plot of a mask: the kept fraction of each rowStep × colStep block, with at
// most maxCells blocks per side; values [rows, cols] row-major.
struct BlockDensity {
  int rows = 0, cols = 0;
  int64_t rowStep = 1, colStep = 1;
  std::vector<float> values;
};
BlockDensity blockDensity(const Bitmap& mask, int maxCells);

enum class PruneMethod { Magnitude, Global, Rows, Cols, Block, NM };

struct PruneSpec {
  PruneMethod method = PruneMethod::Magnitude;
  double sparsity = 0.5;  // fraction removed, in [0, 1)
  int norm = 1;           // rows / cols: L1 or L2
  int block = 4;          // block:B
  int n = 2, m = 4;       // nm:N:M
};

// "magnitude", "global", "rows", "cols", "block:B", "nm:N:M".
Result<PruneSpec> parsePruneMethod(const std::string& text, PruneSpec spec);
std::string pruneMethodText(const PruneSpec& spec);
Status validate(const PruneSpec& spec, int64_t rows, int64_t cols);

// The mask of one matrix w: [rows, cols] (Global is the same as Magnitude here).
Result<Bitmap> pruneMask(const float* w, int64_t rows, int64_t cols, const PruneSpec& spec,
                         ThreadPool* pool = nullptr);

// Global magnitude pruning over several matrices: exactly round_half_even(s·total)
// weights removed in all of them together.
struct MatrixView {
  const float* w;
  int64_t rows, cols;
};
Result<std::vector<Bitmap>> globalMagnitudeMasks(const std::vector<MatrixView>& matrices,
                                                 double sparsity);

// Zeroes (+0) what the mask removes, in chunks on `pool` when given.
void applyMask(float* w, const Bitmap& mask, ThreadPool* pool = nullptr);
// The same into another buffer (not overlapping w): out = w with the removed weights +0.
void maskedCopy(const float* w, const Bitmap& mask, float* out, ThreadPool* pool = nullptr);

// Compressed sparse rows of the kept weights.
struct Csr {
  int64_t rows = 0, cols = 0;
  std::vector<int64_t> rowPtr;  // [rows + 1]
  std::vector<int32_t> colIdx;  // [nnz]
  std::vector<float> values;    // [nnz]
  int64_t bytes() const {
    return int64_t(rowPtr.size()) * 8 + int64_t(colIdx.size()) * 4 + int64_t(values.size()) * 4;
  }
};
Csr toCsr(const float* w, const Bitmap& mask);

// Storage of a pruned float32 matrix: dense; bitmap plus kept values; CSR (int64
// row pointers, int32 column indices, float32 values).
struct SparseBytes {
  int64_t dense = 0, bitmap = 0, csr = 0;
};
SparseBytes sparseBytes(const Bitmap& mask);

}  // namespace attn::sparse
