// .npy layout: magic "\x93NUMPY", u8 major, u8 minor, header length (u16 LE for
// v1, u32 LE for v2/v3), then an ASCII/UTF-8 Python dict literal
// {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } padded with spaces
// and a newline so the data starts at a multiple of 64; then the raw data.
// Checks: magic, version, header within the file, a descr we support,
// fortran_order False, shape of non-negative integers, data size = numel * itemsize.
#include "core/io/npy.h"

#include <cstring>
#include <fstream>
#include <iterator>
#include <string>

#include "core/io/atomic_file.h"

namespace attn {

namespace {
std::string fieldValue(const std::string& header, const std::string& key) {
  const auto k = header.find("'" + key + "'");
  if (k == std::string::npos) return {};
  auto p = header.find(':', k);
  if (p == std::string::npos) return {};
  ++p;
  while (p < header.size() && header[p] == ' ') ++p;
  if (p >= header.size()) return {};
  if (header[p] == '\'') {
    const auto e = header.find('\'', p + 1);
    return e == std::string::npos ? std::string{} : header.substr(p + 1, e - p - 1);
  }
  if (header[p] == '(') {
    const auto e = header.find(')', p);
    return e == std::string::npos ? std::string{} : header.substr(p, e - p + 1);
  }
  auto e = header.find_first_of(",}", p);
  return header.substr(p, e == std::string::npos ? std::string::npos : e - p);
}
}  // namespace

Result<NpyArray> readNpy(const std::filesystem::path& path) {
  const std::string name = path.string();
  std::ifstream in(path, std::ios::binary);
  if (!in) return makeError("cannot open '" + name + "'");
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (bytes.size() < 10 || std::memcmp(bytes.data(), "\x93NUMPY", 6) != 0)
    return makeError(name + ": not a .npy file (bad magic)");
  const int major = static_cast<unsigned char>(bytes[6]);
  size_t hlen = 0, hstart = 0;
  const auto u8 = [&](size_t i) {
    return static_cast<size_t>(static_cast<unsigned char>(bytes[i]));
  };
  if (major == 1) {
    hlen = u8(8) | (u8(9) << 8);
    hstart = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) return makeError(name + ": truncated header");
    hlen = u8(8) | (u8(9) << 8) | (u8(10) << 16) | (u8(11) << 24);
    hstart = 12;
  } else {
    return makeError(name + ": unsupported .npy version " + std::to_string(major));
  }
  if (hstart + hlen > bytes.size()) return makeError(name + ": header runs past the end of file");
  const std::string header = bytes.substr(hstart, hlen);
  const std::string descr = fieldValue(header, "descr");
  if (fieldValue(header, "fortran_order") != "False")
    return makeError(name + ": Fortran-order arrays are not supported");
  NpyArray a;
  const std::string shape = fieldValue(header, "shape");
  if (shape.empty() || shape.front() != '(') return makeError(name + ": no shape in header");
  for (size_t p = 1; p < shape.size();) {
    while (p < shape.size() && (shape[p] == ' ' || shape[p] == ',')) ++p;
    if (p >= shape.size() || shape[p] == ')') break;
    size_t used = 0;
    long long d = -1;
    try {
      d = std::stoll(shape.substr(p), &used);
    } catch (...) {
      return makeError(name + ": bad shape " + shape);
    }
    if (d < 0 || used == 0) return makeError(name + ": bad shape " + shape);
    a.shape.push_back(d);
    p += used;
  }
  size_t item = 0;
  if (descr == "<f4" || descr == "<i4")
    item = 4;
  else if (descr == "<f8" || descr == "<i8")
    item = 8;
  else if (descr == "|u1" || descr == "|b1")
    item = 1;
  else
    return makeError(name + ": unsupported dtype '" + descr + "'");
  const auto numel = shapeNumel(a.shape);
  if (!numel) return makeError(name + ": shape overflows");
  const size_t dataStart = hstart + hlen;
  const size_t dataBytes = bytes.size() - dataStart;
  if (static_cast<uint64_t>(*numel) > dataBytes / item ||
      dataBytes != static_cast<size_t>(*numel) * item)
    return makeError(name + ": data has " + std::to_string(dataBytes) + " bytes, but shape " +
                     shapeString(a.shape) + " has " + std::to_string(*numel) + " elements of " +
                     std::to_string(item) + " bytes");
  a.values.resize(static_cast<size_t>(*numel));
  const char* d = bytes.data() + dataStart;
  for (size_t i = 0; i < a.values.size(); ++i) {
    const char* p = d + i * item;
    if (descr == "<f4") {
      float v;
      std::memcpy(&v, p, 4);
      a.values[i] = v;
    } else if (descr == "<f8") {
      double v;
      std::memcpy(&v, p, 8);
      a.values[i] = v;
    } else if (descr == "<i4") {
      int32_t v;
      std::memcpy(&v, p, 4);
      a.values[i] = v;
    } else if (descr == "<i8") {
      int64_t v;
      std::memcpy(&v, p, 8);
      a.values[i] = static_cast<double>(v);
    } else
      a.values[i] = static_cast<unsigned char>(*p);
  }
  return a;
}

Status writeNpyF32(const std::filesystem::path& path, const Shape& shape, const float* data) {
  std::string dims;
  for (int64_t d : shape) dims += std::to_string(d) + ", ";
  if (shape.size() > 1) dims.erase(dims.size() - 1);  // "(2, 3)"; a 1-d shape keeps "(n,)"
  if (shape.size() > 1) dims.pop_back();
  if (shape.size() == 1) dims.pop_back();
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
  while ((10 + header.size() + 1) % 64 != 0) header.push_back(' ');
  header.push_back('\n');
  const size_t n = static_cast<size_t>(shapeNumel(shape).value_or(0));
  return writeFileAtomically(path, [&](std::FILE* f) -> Status {
    unsigned char pre[10] = {0x93,
                             'N',
                             'U',
                             'M',
                             'P',
                             'Y',
                             1,
                             0,
                             static_cast<unsigned char>(header.size() & 0xff),
                             static_cast<unsigned char>(header.size() >> 8)};
    bool ok = std::fwrite(pre, 1, 10, f) == 10 &&
              std::fwrite(header.data(), 1, header.size(), f) == header.size() &&
              (n == 0 || std::fwrite(data, sizeof(float), n, f) == n);
    if (!ok) return makeError("cannot write '" + path.string() + "'");
    return Ok{};
  });
}

}  // namespace attn
