#include "core/tensor/tensor.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

namespace attn {

namespace {
struct DTypeTraits {
  DType type;
  std::string_view name;
  size_t size;
};
constexpr DTypeTraits kTraits[] = {
    {DType::F64, "F64", 8},   {DType::F32, "F32", 4}, {DType::F16, "F16", 2},
    {DType::BF16, "BF16", 2}, {DType::I64, "I64", 8}, {DType::I32, "I32", 4},
    {DType::I16, "I16", 2},   {DType::I8, "I8", 1},   {DType::U8, "U8", 1},
    {DType::BOOL, "BOOL", 1},
};
}  // namespace

std::string_view dtypeName(DType t) { return kTraits[static_cast<int>(t)].name; }
size_t dtypeSize(DType t) { return kTraits[static_cast<int>(t)].size; }

std::optional<DType> dtypeFromName(std::string_view n) {
  for (const auto& tr : kTraits)
    if (tr.name == n) return tr.type;
  return std::nullopt;
}

std::string shapeString(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) out += ',';
    out += std::to_string(s[i]);
  }
  return out + "]";
}

std::optional<int64_t> shapeNumel(const Shape& s) {
  constexpr int64_t kMax = int64_t{1} << 62;
  int64_t n = 1;
  for (int64_t d : s) {
    if (d < 0) return std::nullopt;
    if (d != 0 && n > kMax / d) return std::nullopt;
    n *= d;
  }
  return n;
}

float halfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: renormalise
      exp = 127 - 15 + 1;
      while ((mant & 0x400u) == 0) {
        mant <<= 1;
        --exp;
      }
      mant &= 0x3ffu;
      bits = sign | (exp << 23) | (mant << 13);
    }
  } else if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  return std::bit_cast<float>(bits);
}

float bf16ToFloat(uint16_t b) { return std::bit_cast<float>(static_cast<uint32_t>(b) << 16); }

uint16_t floatToBf16(float f) {
  uint32_t x = std::bit_cast<uint32_t>(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40);  // NaN
  x += 0x7fffu + ((x >> 16) & 1u);
  return static_cast<uint16_t>(x >> 16);
}

uint16_t floatToHalf(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t ax = x & 0x7fffffffu;
  if (ax > 0x7f800000u) return sign | 0x7e00u;   // NaN
  if (ax >= 0x477ff000u) return sign | 0x7c00u;  // rounds to inf
  if (ax < 0x38800000u) {                        // subnormal half or zero
    // Let the FPU round: scale so the half subnormal step becomes 1.0.
    const float scaled = std::bit_cast<float>(ax) * 16777216.0f;  // 2^24
    return sign | static_cast<uint16_t>(std::nearbyint(scaled));
  }
  uint32_t m = ax + 0xc8000fffu + ((ax >> 13) & 1u);  // rebias exponent, round to even
  return sign | static_cast<uint16_t>(m >> 13);
}

Tensor::Tensor(DType dtype, Shape shape, const void* data, std::shared_ptr<const void> owner)
    : dtype_(dtype), shape_(std::move(shape)), data_(data), owner_(std::move(owner)) {}

int64_t Tensor::numel() const { return shapeNumel(shape_).value_or(0); }

Tensor Tensor::zerosF32(Shape shape) {
  return fromF32(shape, std::vector<float>(static_cast<size_t>(shapeNumel(shape).value_or(0))));
}

Tensor Tensor::fromF32(Shape shape, std::vector<float> values) {
  auto buf = std::make_shared<std::vector<float>>(std::move(values));
  Tensor t(DType::F32, std::move(shape), buf->data(), buf);
  t.mutable_ = true;
  return t;
}

Tensor Tensor::uninitializedF32(Shape shape) {
  const size_t n = static_cast<size_t>(shapeNumel(shape).value_or(0));
  std::shared_ptr<float[]> buf = std::make_shared_for_overwrite<float[]>(n);
  Tensor t(DType::F32, std::move(shape), buf.get(), std::shared_ptr<const void>(buf, buf.get()));
  t.mutable_ = true;
  return t;
}

float* Tensor::mutableF32() {
  return mutable_ && dtype_ == DType::F32 ? static_cast<float*>(const_cast<void*>(data_)) : nullptr;
}

Tensor Tensor::toF32() const {
  const bool aligned = reinterpret_cast<uintptr_t>(data_) % alignof(float) == 0;
  if (dtype_ == DType::F32 && aligned) return *this;
  const int64_t n = numel();
  std::vector<float> out(static_cast<size_t>(n));
  const auto* bytes = static_cast<const unsigned char*>(data_);
  for (int64_t i = 0; i < n; ++i) {
    const unsigned char* p = bytes + i * dtypeSize(dtype_);
    switch (dtype_) {
      case DType::F32:
        std::memcpy(&out[i], p, 4);
        break;
      case DType::F64: {
        double d;
        std::memcpy(&d, p, 8);
        out[i] = static_cast<float>(d);
        break;
      }
      case DType::F16: {
        uint16_t h;
        std::memcpy(&h, p, 2);
        out[i] = halfToFloat(h);
        break;
      }
      case DType::BF16: {
        uint16_t h;
        std::memcpy(&h, p, 2);
        out[i] = bf16ToFloat(h);
        break;
      }
      case DType::I64: {
        int64_t v;
        std::memcpy(&v, p, 8);
        out[i] = static_cast<float>(v);
        break;
      }
      case DType::I32: {
        int32_t v;
        std::memcpy(&v, p, 4);
        out[i] = static_cast<float>(v);
        break;
      }
      case DType::I16: {
        int16_t v;
        std::memcpy(&v, p, 2);
        out[i] = static_cast<float>(v);
        break;
      }
      case DType::I8:
        out[i] = static_cast<float>(static_cast<int8_t>(*p));
        break;
      case DType::U8:
      case DType::BOOL:
        out[i] = static_cast<float>(*p);
        break;
    }
  }
  return fromF32(shape_, std::move(out));
}

ConstRowMap Tensor::matrix() const {
  const int64_t rows = rank() >= 2 ? shape_[0] : 1;
  const int64_t cols = rank() >= 2 ? numel() / std::max<int64_t>(rows, 1) : numel();
  return ConstRowMap(f32(), rows, cols);
}

}  // namespace attn
