// NumPy .npy files (format versions 1.0–3.0) for attention dumps and test
// references.
#pragma once

#include <filesystem>
#include <vector>

#include "core/tensor/tensor.h"
#include "core/util/result.h"

namespace attn {

struct NpyArray {
  Shape shape;
  std::vector<double> values;  // any supported dtype, widened; C order
};

// Reads '<f4', '<f8', '<i4', '<i8', '|u1', '|b1' arrays in C order.
Result<NpyArray> readNpy(const std::filesystem::path& path);

// Writes a float32 array ('<f4', C order, format 1.0) atomically.
Status writeNpyF32(const std::filesystem::path& path, const Shape& shape, const float* data);

}  // namespace attn
