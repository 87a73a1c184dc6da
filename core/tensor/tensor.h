// Tensor: a dtype, a shape and row-major (C order) bytes that are either owned
// or borrowed from a memory-mapped file (kept alive through `owner`).
// Legend used across core/: L = layers, H = heads, S = sequence length,
// D = hidden size, Dh = head dim (D / H), F = FFN size, V = vocabulary.
#pragma once

#include <Eigen/Core>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace attn {

enum class DType : uint8_t { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL };

// Name as safetensors spells it ("F32", "BF16", ...).
std::string_view dtypeName(DType t);
size_t dtypeSize(DType t);
std::optional<DType> dtypeFromName(std::string_view safetensorsName);

using Shape = std::vector<int64_t>;
std::string shapeString(const Shape& s);  // "[768,3072]"
// Product of dims; nullopt on a negative dim or overflow past 2^62.
std::optional<int64_t> shapeNumel(const Shape& s);

using RowMatrixXf = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstRowMap = Eigen::Map<const RowMatrixXf>;

float halfToFloat(uint16_t h);
float bf16ToFloat(uint16_t b);
uint16_t floatToHalf(float f);  // round to nearest even, as torch .half()
uint16_t floatToBf16(float f);  // round to nearest even, as torch .bfloat16()

class Tensor {
 public:
  Tensor() = default;
  // Borrows `data`; `owner` keeps the memory alive (e.g. a mapped file).
  Tensor(DType dtype, Shape shape, const void* data, std::shared_ptr<const void> owner);

  static Tensor zerosF32(Shape shape);
  static Tensor fromF32(Shape shape, std::vector<float> values);
  // An owned F32 tensor whose values are not initialised (no pass over its
  // memory): the caller writes every one of them through mutableF32().
  static Tensor uninitializedF32(Shape shape);

  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int64_t dim(size_t i) const { return shape_.at(i); }
  size_t rank() const { return shape_.size(); }
  int64_t numel() const;
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtypeSize(dtype_); }
  bool empty() const { return data_ == nullptr; }
  const void* raw() const { return data_; }
  // True when the bytes live in someone else's buffer (a mapped file).
  bool borrowed() const { return !mutable_; }

  // Valid for F32 tensors only.
  const float* f32() const { return static_cast<const float*>(data_); }
  float* mutableF32();  // owned F32 tensors only

  // A float32 tensor with the same values: this one itself when already F32
  // and 4-byte aligned (no copy), an owned converted copy otherwise.
  Tensor toF32() const;

  // [rows, cols] view of a rank-2 F32 tensor (rank-1: one row).
  ConstRowMap matrix() const;

 private:
  DType dtype_ = DType::F32;
  Shape shape_;
  const void* data_ = nullptr;
  std::shared_ptr<const void> owner_;
  bool mutable_ = false;
};

}  // namespace attn
