#include "core/compress/hdf5_model.h"

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <system_error>

#include "core/compress/compressed.h"
#include "core/io/atomic_file.h"
#include "core/io/hdf5_util.h"
#include "core/model/hf_writer.h"

namespace attn::compress {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;
using H5 = h5::Handle;

namespace {

constexpr int kLayoutVersion = 1;

// The thread-safe HDF5 build must set up its error interface on the main thread:
// when the first HDF5 error of the process happens on a worker thread, the library
// cannot shut down at exit ("HDF5: infinite loop closing library"). Static
// initialisation runs on the main thread; core never lets HDF5 print.
[[maybe_unused]] const bool kHdf5Quiet = [] {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  return true;
}();

// The parts of a compressed matrix: HDF5 dataset name ↔ safetensors suffix, dtype.
struct Part {
  const char* dataset;
  const char* suffix;
  DType dtype;
};
constexpr Part kParts[] = {{"codes", ".qweight", DType::U8},     {"scales", ".scales", DType::F32},
                           {"zeros", ".zeros", DType::U8},       {"codebook", ".codebook", DType::F32},
                           {"exponents", ".exponents", DType::I8}, {"mask", ".mask", DType::U8},
                           {"values", ".values", DType::F32}};

// File type, memory type of a dtype (F16 / BF16 as their bit patterns).
std::pair<hid_t, hid_t> h5Types(DType t) {
  switch (t) {
    case DType::F64: return {H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE};
    case DType::F32: return {H5T_IEEE_F32LE, H5T_NATIVE_FLOAT};
    case DType::F16:
    case DType::BF16: return {H5T_STD_U16LE, H5T_NATIVE_UINT16};
    case DType::I64: return {H5T_STD_I64LE, H5T_NATIVE_INT64};
    case DType::I32: return {H5T_STD_I32LE, H5T_NATIVE_INT32};
    case DType::I16: return {H5T_STD_I16LE, H5T_NATIVE_INT16};
    case DType::I8: return {H5T_STD_I8LE, H5T_NATIVE_INT8};
    case DType::U8:
    case DType::BOOL: return {H5T_STD_U8LE, H5T_NATIVE_UINT8};
  }
  return {H5T_STD_U8LE, H5T_NATIVE_UINT8};
}

bool writeDataset(hid_t loc, const char* name, const Tensor& t) {
  std::vector<hsize_t> dims;
  for (int64_t d : t.shape()) dims.push_back(hsize_t(d));
  const auto [fileType, memType] = h5Types(t.dtype());
  H5 space{dims.empty() ? H5Screate(H5S_SCALAR)
                        : H5Screate_simple(int(dims.size()), dims.data(), nullptr),
           H5Sclose};
  H5 set{H5Dcreate2(loc, name, fileType, space.id, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
         H5Dclose};
  if (set.id < 0) return false;
  return t.numel() == 0 || H5Dwrite(set.id, memType, H5S_ALL, H5S_ALL, H5P_DEFAULT, t.raw()) >= 0;
}

hid_t newBoolType() {  // h5py's bool: an int8 enum {FALSE, TRUE}
  const hid_t t = H5Tenum_create(H5T_NATIVE_INT8);
  int8_t v = 0;
  H5Tenum_insert(t, "FALSE", &v);
  v = 1;
  H5Tenum_insert(t, "TRUE", &v);
  return t;
}

bool writeJsonAttr(hid_t obj, const std::string& key, const Json& v) {
  if (v.is_string()) return h5::writeStringAttr(obj, key.c_str(), v.get<std::string>());
  if (v.is_boolean()) {
    H5 type{newBoolType(), H5Tclose};
    H5 space{H5Screate(H5S_SCALAR), H5Sclose};
    H5 attr{H5Acreate2(obj, key.c_str(), type.id, space.id, H5P_DEFAULT, H5P_DEFAULT), H5Aclose};
    const int8_t b = v.get<bool>() ? 1 : 0;
    return attr.id >= 0 && H5Awrite(attr.id, type.id, &b) >= 0;
  }
  if (v.is_number_integer()) return h5::writeIntAttr(obj, key.c_str(), v.get<int64_t>());
  if (v.is_array()) {  // of integers (shapes)
    std::vector<int64_t> xs = v.get<std::vector<int64_t>>();
    const hsize_t n[1] = {hsize_t(xs.size())};
    H5 space{H5Screate_simple(1, n, nullptr), H5Sclose};
    H5 attr{H5Acreate2(obj, key.c_str(), H5T_STD_I64LE, space.id, H5P_DEFAULT, H5P_DEFAULT),
            H5Aclose};
    return attr.id >= 0 && (xs.empty() || H5Awrite(attr.id, H5T_NATIVE_INT64, xs.data()) >= 0);
  }
  return false;
}

Status writeFile(const fs::path& path, const Model& source, const CompressedTensors& layout,
                 const std::map<std::string, std::string>& side, const std::string& report,
                 const CancelToken* cancel, const std::function<Result<std::string>()>& lateReport) {
  const std::string name = path.string();
  H5 file{H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose};
  if (file.id < 0) return makeError("cannot create HDF5 file '" + name + "'");
  const auto meta = [&](const char* key) {
    const auto it = layout.metadata.find(key);
    return it == layout.metadata.end() ? std::string() : it->second;
  };
  const std::string prefix = meta("attnstudio_prefix");
  bool ok = h5::writeStringAttr(file.id, "format", kCompressedFormat) &&
            h5::writeInt32Attr(file.id, "layout_version", kLayoutVersion) &&
            h5::writeStringAttr(file.id, "architecture",
                                std::string(architectureName(source.config.arch))) &&
            h5::writeStringAttr(file.id, "prefix", prefix) &&
            h5::writeStringAttr(file.id, "tool_version", ATTN_VERSION) &&
            h5::writeStringDataset(file.id, "config", side.at("config.json")) &&
            h5::writeStringDataset(file.id, "plan", meta("attnstudio_plan"));
  if (ok && !report.empty()) ok = h5::writeStringDataset(file.id, "report", report);
  H5 tok{H5Gcreate2(file.id, "tokenizer", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose};
  ok = ok && tok.id >= 0;
  for (const auto& [fileName, bytes] : side) {
    if (!ok || fileName == "config.json") continue;
    auto holder = std::make_shared<std::string>(bytes);
    ok = writeDataset(tok.id, fileName.c_str(),
                      Tensor(DType::U8, {int64_t(bytes.size())}, holder->data(), holder));
  }
  H5 tensors{H5Gcreate2(file.id, "tensors", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose};
  ok = ok && tensors.id >= 0;
  std::map<std::string, const Tensor*> byName;
  for (const auto& [n, t] : layout.tensors) byName[n] = &t;
  std::set<std::string> stored;
  // Large files: what is written goes to disk as we go, not all at the final fsync.
  size_t pending = 0;
  auto wrote = [&](const Tensor& t) {
    if ((pending += t.nbytes()) < (size_t(16) << 20)) return;
    pending = 0;
    if (H5Fflush(file.id, H5F_SCOPE_GLOBAL) >= 0) startWriteback(path);
  };
  const Json index = Json::parse(meta("attnstudio_tensors"));
  for (const auto& [matrix, entry] : index.items()) {
    if (!ok || isCancelled(cancel)) break;
    const std::string base = prefix + matrix;
    H5 g{H5Gcreate2(tensors.id, base.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose};
    ok = g.id >= 0;
    for (const auto& [key, v] : entry.items()) ok = ok && writeJsonAttr(g.id, key, v);
    for (const Part& p : kParts) {
      const auto it = byName.find(base + p.suffix);
      if (it == byName.end() || !ok) continue;
      ok = writeDataset(g.id, p.dataset, *it->second);
      stored.insert(it->first);
      wrote(*it->second);
    }
  }
  for (const auto& [n, t] : layout.tensors) {
    if (!ok || isCancelled(cancel)) break;
    if (stored.count(n)) continue;
    H5 g{H5Gcreate2(tensors.id, n.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose};
    ok = g.id >= 0 && h5::writeStringAttr(g.id, "encoding", "dense") &&
         h5::writeStringAttr(g.id, "dtype", std::string(dtypeName(t.dtype()))) &&
         writeDataset(g.id, "data", t);
    wrote(t);
  }
  if (isCancelled(cancel)) return makeError("cancelled");
  if (!ok) return makeError("cannot write HDF5 file '" + name + "'");
  if (lateReport) {
    if (H5Fflush(file.id, H5F_SCOPE_GLOBAL) >= 0) startWriteback(path);  // while it waits
    auto text = lateReport();
    if (!text) return text.error();
    if (!h5::writeStringDataset(file.id, "report", *text))
      return makeError("cannot write HDF5 file '" + name + "'");
  }
  if (H5Fflush(file.id, H5F_SCOPE_GLOBAL) < 0) return makeError("cannot flush '" + name + "'");
  return Ok{};
}

// ---------------------------------------------------------------- reading

herr_t collectName(hid_t, const char* name, const H5L_info_t*, void* out) {
  static_cast<std::vector<std::string>*>(out)->push_back(name);
  return 0;
}

herr_t collectAttr(hid_t, const char* name, const H5A_info_t*, void* out) {
  static_cast<std::vector<std::string>*>(out)->push_back(name);
  return 0;
}

std::vector<std::string> children(hid_t group) {
  std::vector<std::string> names;
  hsize_t idx = 0;
  H5Literate(group, H5_INDEX_NAME, H5_ITER_INC, &idx, collectName, &names);
  return names;
}

class Reader {
 public:
  Reader(hid_t file, std::string where, uint64_t fileBytes)
      : file_(file), where_(std::move(where)), fileBytes_(fileBytes) {}

  Error fail(const std::string& object, const std::string& problem) const {
    return makeError(where_ + ": " + object + ": " + problem);
  }

  // A scalar string, dataset (isAttr false) or attribute of obj.
  Result<std::string> string(hid_t obj, const char* name, bool isAttr, const std::string& path) {
    H5 h{isAttr ? H5Aopen(obj, name, H5P_DEFAULT) : H5Dopen2(obj, name, H5P_DEFAULT),
         isAttr ? H5Aclose : H5Dclose};
    if (h.id < 0) return fail(path, "missing");
    H5 type{isAttr ? H5Aget_type(h.id) : H5Dget_type(h.id), H5Tclose};
    H5 space{isAttr ? H5Aget_space(h.id) : H5Dget_space(h.id), H5Sclose};
    if (H5Tget_class(type.id) != H5T_STRING || H5Sget_simple_extent_npoints(space.id) != 1)
      return fail(path, "not a string");
    if (H5Tis_variable_str(type.id) > 0) {
      H5 mem{h5::newUtf8Type(), H5Tclose};
      char* p = nullptr;
      const herr_t r = isAttr ? H5Aread(h.id, mem.id, &p)
                              : H5Dread(h.id, mem.id, H5S_ALL, H5S_ALL, H5P_DEFAULT, &p);
      if (r < 0) return fail(path, "cannot be read");
      std::string s = p ? p : "";
      H5free_memory(p);
      return s;
    }
    const size_t n = H5Tget_size(type.id);
    if (n == 0 || n > fileBytes_) return fail(path, "has a bad size");
    std::string s(n, '\0');
    const herr_t r = isAttr ? H5Aread(h.id, type.id, s.data())
                            : H5Dread(h.id, type.id, H5S_ALL, H5S_ALL, H5P_DEFAULT, s.data());
    if (r < 0) return fail(path, "cannot be read");
    s.resize(std::strlen(s.c_str()));
    return s;
  }

  // Every attribute of a group as JSON: strings, booleans (enums), integers,
  // integer arrays.
  Result<Json> attributes(hid_t obj, const std::string& path) {
    std::vector<std::string> names;
    hsize_t idx = 0;
    if (H5Aiterate2(obj, H5_INDEX_NAME, H5_ITER_INC, &idx, collectAttr, &names) < 0)
      return fail(path, "attributes cannot be listed");
    Json out = Json::object();
    for (const std::string& n : names) {
      H5 a{H5Aopen(obj, n.c_str(), H5P_DEFAULT), H5Aclose};
      H5 type{H5Aget_type(a.id), H5Tclose};
      H5 space{H5Aget_space(a.id), H5Sclose};
      const hssize_t count = H5Sget_simple_extent_npoints(space.id);
      const H5T_class_t cls = H5Tget_class(type.id);
      if (cls == H5T_STRING) {
        auto s = string(obj, n.c_str(), true, path + "@" + n);
        if (!s) return s.error();
        out[n] = *s;
      } else if (cls == H5T_ENUM && count == 1) {
        int8_t b = 0;
        H5 mem{newBoolType(), H5Tclose};
        if (H5Aread(a.id, mem.id, &b) < 0) return fail(path + "@" + n, "is not a bool");
        out[n] = b != 0;
      } else if (cls == H5T_INTEGER && count >= 0 && count <= 64) {
        std::vector<int64_t> v(size_t(count), 0);
        if (count > 0 && H5Aread(a.id, H5T_NATIVE_INT64, v.data()) < 0)
          return fail(path + "@" + n, "cannot be read");
        if (H5Sget_simple_extent_ndims(space.id) == 0)
          out[n] = v.empty() ? 0 : v[0];
        else
          out[n] = v;
      } else {
        return fail(path + "@" + n, "has an unexpected type");
      }
    }
    return out;
  }

  // A dataset read into an owned tensor of `dtype` (its HDF5 class must match).
  Result<Tensor> tensor(hid_t group, const char* name, DType dtype, const std::string& path) {
    H5 set{H5Dopen2(group, name, H5P_DEFAULT), H5Dclose};
    if (set.id < 0) return fail(path, "missing");
    H5 type{H5Dget_type(set.id), H5Tclose};
    H5 space{H5Dget_space(set.id), H5Sclose};
    const auto [fileType, memType] = h5Types(dtype);
    if (H5Tget_class(type.id) != H5Tget_class(fileType) ||
        H5Tget_size(type.id) != H5Tget_size(fileType))
      return fail(path, "has the wrong type for " + std::string(dtypeName(dtype)));
    const int rank = H5Sget_simple_extent_ndims(space.id);
    if (rank < 0 || rank > 8) return fail(path, "has a bad rank");
    std::vector<hsize_t> dims(size_t(rank), 0);
    H5Sget_simple_extent_dims(space.id, dims.data(), nullptr);
    Shape shape;
    uint64_t n = 1;
    for (hsize_t d : dims) {
      if (d > fileBytes_) return fail(path, "is larger than the file");
      n *= d;
      if (n > fileBytes_) return fail(path, "is larger than the file");
      shape.push_back(int64_t(d));
    }
    const size_t bytes = size_t(n) * dtypeSize(dtype);
    if (bytes > fileBytes_) return fail(path, "is larger than the file");
    auto holder = std::make_shared<std::vector<uint8_t>>(bytes);
    if (n > 0 && H5Dread(set.id, memType, H5S_ALL, H5S_ALL, H5P_DEFAULT, holder->data()) < 0)
      return fail(path, "cannot be read (truncated or corrupted file?)");
    return Tensor(dtype, std::move(shape), holder->data(), holder);
  }

  Result<Hdf5Model> read() {
    Hdf5Model out;
    auto format = string(file_, "format", true, "/@format");
    if (!format || *format != kCompressedFormat)
      return makeError(where_ + ": not an " + std::string(kCompressedFormat) +
                       " HDF5 file (root attribute 'format' missing or different)");
    auto config = string(file_, "config", false, "/config");
    if (!config) return config.error();
    out.sideFiles["config.json"] = *config;
    auto plan = string(file_, "plan", false, "/plan");
    if (!plan) return plan.error();
    if (H5Lexists(file_, "report", H5P_DEFAULT) > 0) {
      auto report = string(file_, "report", false, "/report");
      if (!report) return report.error();
      out.report = *report;
    }
    auto prefix = string(file_, "prefix", true, "/@prefix");
    if (!prefix) return prefix.error();
    if (H5Lexists(file_, "tokenizer", H5P_DEFAULT) > 0) {
      H5 tok{H5Gopen2(file_, "tokenizer", H5P_DEFAULT), H5Gclose};
      if (tok.id < 0) return fail("/tokenizer", "is not a group");
      for (const std::string& n : children(tok.id)) {
        auto t = tensor(tok.id, n.c_str(), DType::U8, "/tokenizer/" + n);
        if (!t) return t.error();
        out.sideFiles[n] = std::string(static_cast<const char*>(t->raw()), size_t(t->numel()));
      }
    }
    H5 tensors{H5Gopen2(file_, "tensors", H5P_DEFAULT), H5Gclose};
    if (tensors.id < 0) return fail("/tensors", "missing");
    Json index = Json::object();
    Checkpoint& ck = out.checkpoint;
    const std::string fileName = fs::path(where_).filename().string();
    for (const std::string& n : children(tensors.id)) {
      const std::string path = "/tensors/" + n;
      H5 g{H5Gopen2(tensors.id, n.c_str(), H5P_DEFAULT), H5Gclose};
      if (g.id < 0) return fail(path, "is not a group");
      auto attrs = attributes(g.id, path);
      if (!attrs) return attrs.error();
      if (!attrs->contains("encoding") || !(*attrs)["encoding"].is_string())
        return fail(path, "has no encoding attribute");
      if ((*attrs)["encoding"] == "dense") {
        const auto dt = attrs->contains("dtype") && (*attrs)["dtype"].is_string()
                            ? dtypeFromName((*attrs)["dtype"].get<std::string>())
                            : std::nullopt;
        if (!dt) return fail(path, "has no known dtype attribute");
        auto t = tensor(g.id, "data", *dt, path + "/data");
        if (!t) return t.error();
        ck.tensors[n] = {std::move(*t), fileName};
        continue;
      }
      if (n.compare(0, prefix->size(), *prefix) != 0)
        return fail(path, "does not start with the prefix '" + *prefix + "'");
      index[n.substr(prefix->size())] = *attrs;
      for (const Part& p : kParts) {
        if (H5Lexists(g.id, p.dataset, H5P_DEFAULT) <= 0) continue;
        auto t = tensor(g.id, p.dataset, p.dtype, path + "/" + p.dataset);
        if (!t) return t.error();
        ck.tensors[n + p.suffix] = {std::move(*t), fileName};
      }
    }
    if (ck.tensors.empty()) return fail("/tensors", "is empty");
    ck.metadata["format"] = kCompressedFormat;
    ck.metadata["attnstudio_plan"] = *plan;
    ck.metadata["attnstudio_tensors"] = index.dump();
    ck.metadata["attnstudio_prefix"] = *prefix;
    ck.totalFileBytes = fileBytes_;
    return out;
  }

 private:
  hid_t file_;
  std::string where_;
  uint64_t fileBytes_;
};

}  // namespace

Status writeCompressedHdf5(const fs::path& file, const Model& source, const AppliedPlan& applied,
                           const CompressionPlan& plan, const std::string& reportJson,
                           const CancelToken* cancel,
                           const std::function<Result<std::string>()>& lateReport) {
  if (lateReport && !reportJson.empty()) return makeError("one report, not two");
  std::error_code ec;
  if (fs::is_directory(file, ec)) return makeError("'" + file.string() + "' is a folder");
  if (fs::exists(file, ec) && fs::exists(source.source, ec) &&
      fs::equivalent(file, source.source, ec))
    return makeError("refusing to write over the source model");
  auto side = readSideFiles(source);
  if (!side) return side.error();
  auto layout = compressedTensors(source, applied, plan);
  if (!layout) return layout.error();
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);  // core never prints
  return writePathAtomically(file, [&](const fs::path& tmp) -> Status {
    if (Status st = writeFile(tmp, source, *layout, *side, reportJson, cancel, lateReport); !st)
      return st;
    return syncFile(tmp);  // on disk before the rename, as every atomic write here
  });
}

bool isHdf5File(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  char sig[8] = {};
  in.read(sig, 8);
  return in.gcount() == 8 && std::memcmp(sig, "\x89HDF\r\n\x1a\n", 8) == 0;
}

Result<Hdf5Model> readHdf5Model(const fs::path& file) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  std::error_code ec;
  const uint64_t bytes = fs::file_size(file, ec);
  if (ec) return makeError(file.string() + ": " + ec.message());
  H5 f{H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose};
  if (f.id < 0) return makeError(file.string() + ": cannot be opened as HDF5 (truncated or corrupted?)");
  try {
    return Reader(f.id, file.string(), bytes).read();
  } catch (const std::exception& e) {  // nlohmann::json, bad_alloc
    return makeError(file.string() + ": " + e.what());
  }
}

}  // namespace attn::compress
