// safetensors reader and writer.
//
// Layout: bytes [0, 8)  u64 little-endian N = header length
//         bytes [8, 8+N) UTF-8 JSON object, possibly padded with trailing spaces:
//           {"<name>": {"dtype": "F32", "shape": [d0, d1, ...],
//                       "data_offsets": [begin, end]}, ...,
//            "__metadata__": {"key": "value", ...}}          (optional, strings)
//         bytes [8+N, EOF) data section; offsets are relative to its start;
//           C order, little-endian.
// Checks made here, each failing with a message naming the file, the tensor
// and the numbers: file at least 8 bytes; N <= file size - 8 and N <= 100 MiB;
// header is valid JSON and an object; every entry has a known dtype, a shape of
// non-negative integers and two integer offsets with begin <= end <= data size;
// end - begin == product(shape) * dtype size (no overflow); sorted by offset the
// entries start at 0, neither overlap nor leave gaps, and the last one ends at
// the end of the file (the official reader's rules); metadata values are strings.
#include "core/io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/io/atomic_file.h"

namespace attn {

namespace {
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

std::string q(const std::string& s) { return "'" + s + "'"; }

uint64_t readU64LE(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
}  // namespace

Result<std::shared_ptr<const SafetensorsFile>> SafetensorsFile::open(
    const std::filesystem::path& path) {
  auto mapped = MappedFile::open(path);
  if (!mapped) return mapped.error();
  const std::string fname = path.string();
  const auto& file = *mapped;
  const uint64_t size = file->size();
  if (size < 8)
    return makeError(fname + ": " + std::to_string(size) +
                     " bytes is too short for a safetensors file (8-byte header length)");
  const uint64_t n = readU64LE(file->data());
  if (n > size - 8)
    return makeError(fname + ": header length " + std::to_string(n) + " exceeds the file (" +
                     std::to_string(size) + " bytes)");
  if (n > kMaxHeaderBytes)
    return makeError(fname + ": header length " + std::to_string(n) + " is over the 100 MiB limit");
  const char* hb = reinterpret_cast<const char*>(file->data() + 8);
  nlohmann::json header = nlohmann::json::parse(hb, hb + n, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded())
    return makeError(fname + ": header is not valid JSON (" + std::to_string(n) + " bytes)");
  if (!header.is_object()) return makeError(fname + ": header is not a JSON object");

  auto out = std::shared_ptr<SafetensorsFile>(new SafetensorsFile());
  out->file_ = file;
  out->dataStart_ = 8 + n;
  const uint64_t dataSize = size - out->dataStart_;

  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const auto& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) return makeError(fname + ": __metadata__ is not an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string())
          return makeError(fname + ": __metadata__ value " + q(m.key()) + " is not a string");
        out->metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string where = fname + ": tensor " + q(name);
    if (!v.is_object()) return makeError(where + " entry is not an object");
    auto dt = v.find("dtype");
    auto sh = v.find("shape");
    auto off = v.find("data_offsets");
    if (dt == v.end() || !dt->is_string()) return makeError(where + " has no dtype string");
    if (sh == v.end() || !sh->is_array()) return makeError(where + " has no shape array");
    if (off == v.end() || !off->is_array() || off->size() != 2)
      return makeError(where + " has no data_offsets [begin, end]");
    SafetensorsEntry e;
    e.name = name;
    const auto dtype = dtypeFromName(dt->get<std::string>());
    if (!dtype) return makeError(where + " has unknown dtype " + q(dt->get<std::string>()));
    e.dtype = *dtype;
    for (const auto& d : *sh) {
      if (!d.is_number_integer() || d.get<int64_t>() < 0)
        return makeError(where +
                         " has a shape entry that is not a non-negative integer: " + d.dump());
      e.shape.push_back(d.get<int64_t>());
    }
    for (const auto& o : *off)
      if (!o.is_number_unsigned())
        return makeError(where +
                         " has a data offset that is not a non-negative integer: " + o.dump());
    e.begin = (*off)[0].get<uint64_t>();
    e.end = (*off)[1].get<uint64_t>();
    if (e.begin > e.end)
      return makeError(where + " has data_offsets [" + std::to_string(e.begin) + ", " +
                       std::to_string(e.end) + "] with begin after end");
    if (e.end > dataSize)
      return makeError(where + " has data_offsets [" + std::to_string(e.begin) + ", " +
                       std::to_string(e.end) + "] past the data section (" +
                       std::to_string(dataSize) + " bytes)");
    const auto numel = shapeNumel(e.shape);
    if (!numel || static_cast<uint64_t>(*numel) > UINT64_MAX / dtypeSize(e.dtype))
      return makeError(where + " has shape " + shapeString(e.shape) + " whose size overflows");
    const uint64_t expect = static_cast<uint64_t>(*numel) * dtypeSize(e.dtype);
    if (e.end - e.begin != expect)
      return makeError(where + " has " + std::to_string(e.end - e.begin) + " bytes, but shape " +
                       shapeString(e.shape) + " of " + std::string(dtypeName(e.dtype)) + " needs " +
                       std::to_string(expect));
    out->entries_.push_back(std::move(e));
  }

  std::sort(out->entries_.begin(), out->entries_.end(), [](const auto& a, const auto& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t cursor = 0;
  for (const auto& e : out->entries_) {
    if (e.begin < cursor)
      return makeError(fname + ": tensor " + q(e.name) + " at bytes [" + std::to_string(e.begin) +
                       ", " + std::to_string(e.end) + ") overlaps the previous tensor (ends at " +
                       std::to_string(cursor) + ")");
    if (e.begin > cursor)
      return makeError(fname + ": gap of " + std::to_string(e.begin - cursor) +
                       " bytes before tensor " + q(e.name) + " at offset " +
                       std::to_string(e.begin));
    cursor = e.end;
  }
  if (cursor != dataSize)
    return makeError(fname + ": tensors cover " + std::to_string(cursor) +
                     " bytes of a data section of " + std::to_string(dataSize) + " bytes");
  for (size_t i = 0; i < out->entries_.size(); ++i) out->index_[out->entries_[i].name] = i;
  return std::shared_ptr<const SafetensorsFile>(std::move(out));
}

const SafetensorsEntry* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

Tensor SafetensorsFile::tensor(const SafetensorsEntry& e) const {
  return Tensor(e.dtype, e.shape, file_->data() + dataStart_ + e.begin, file_);
}

const Tensor* Checkpoint::find(const std::string& name) const {
  auto it = tensors.find(name);
  return it == tensors.end() ? nullptr : &it->second.tensor;
}

void Checkpoint::releasePages(const Tensor& t) const {
  for (const auto& f : files)
    if (f->mapping().contains(t.raw())) {
      f->mapping().release(t.raw(), t.nbytes());
      return;
    }
}

void Checkpoint::releaseAllPages() const {
  for (const auto& f : files) f->mapping().release(f->mapping().data(), f->mapping().size());
}

namespace {
Status addFile(Checkpoint& ck, const std::shared_ptr<const SafetensorsFile>& f) {
  const std::string fname = f->path().filename().string();
  for (const auto& e : f->entries()) {
    auto [it, inserted] = ck.tensors.emplace(e.name, Checkpoint::Item{f->tensor(e), fname});
    if (!inserted)
      return makeError("tensor '" + e.name + "' is stored twice: in " + it->second.file +
                       " and in " + fname);
  }
  if (ck.files.empty()) ck.metadata = f->metadata();
  ck.totalFileBytes += f->fileSize();
  ck.files.push_back(f);
  return Ok{};
}

// model.safetensors.index.json: {"metadata": {...}, "weight_map": {"name": "shard file"}}
Result<Checkpoint> openSharded(const std::filesystem::path& indexPath) {
  const std::string iname = indexPath.string();
  std::ifstream in(indexPath, std::ios::binary);
  if (!in) return makeError("cannot open '" + iname + "'");
  nlohmann::json idx = nlohmann::json::parse(in, nullptr, false);
  if (idx.is_discarded() || !idx.is_object()) return makeError(iname + ": not a JSON object");
  auto wm = idx.find("weight_map");
  if (wm == idx.end() || !wm->is_object() || wm->empty())
    return makeError(iname + ": no \"weight_map\" object");
  std::map<std::string, std::string> wanted;  // tensor -> shard
  std::vector<std::string> shards;
  for (auto it = wm->begin(); it != wm->end(); ++it) {
    if (!it.value().is_string())
      return makeError(iname + ": weight_map entry '" + it.key() + "' is not a file name");
    const std::string shard = it.value().get<std::string>();
    if (shard.find('/') != std::string::npos || shard.find("..") != std::string::npos)
      return makeError(iname + ": shard name '" + shard + "' leaves the model folder");
    wanted[it.key()] = shard;
    if (std::find(shards.begin(), shards.end(), shard) == shards.end()) shards.push_back(shard);
  }
  Checkpoint ck;
  for (const auto& s : shards) {
    auto f = SafetensorsFile::open(indexPath.parent_path() / s);
    if (!f) return f.error();
    if (auto st = addFile(ck, *f); !st) return st.error();
  }
  for (const auto& [name, shard] : wanted) {
    auto it = ck.tensors.find(name);
    if (it == ck.tensors.end())
      return makeError(iname + ": tensor '" + name + "' is mapped to " + shard +
                       ", which does not contain it");
    if (it->second.file != shard)
      return makeError(iname + ": tensor '" + name + "' is mapped to " + shard + " but stored in " +
                       it->second.file);
  }
  return ck;
}
}  // namespace

Result<Checkpoint> openCheckpoint(const std::filesystem::path& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    if (std::filesystem::exists(path / "model.safetensors"))
      return openCheckpoint(path / "model.safetensors");
    if (std::filesystem::exists(path / "model.safetensors.index.json"))
      return openSharded(path / "model.safetensors.index.json");
    std::vector<std::filesystem::path> found;
    for (const auto& de : std::filesystem::directory_iterator(path, ec))
      if (de.path().extension() == ".safetensors") found.push_back(de.path());
    if (found.size() == 1) return openCheckpoint(found.front());
    return makeError("'" + path.string() +
                     "' has no model.safetensors or model.safetensors.index.json" +
                     (found.size() > 1 ? " (and several other .safetensors files)" : ""));
  }
  if (path.filename().string().ends_with(".index.json")) return openSharded(path);
  if (!std::filesystem::exists(path, ec))
    return makeError("'" + path.string() + "' does not exist");
  auto f = SafetensorsFile::open(path);
  if (!f) return f.error();
  Checkpoint ck;
  if (auto st = addFile(ck, *f); !st) return st.error();
  return ck;
}

Status streamSafetensors(const std::filesystem::path& path, const std::vector<TensorEntry>& entries,
                         const std::function<Result<Tensor>(size_t)>& next,
                         const std::map<std::string, std::string>& metadata,
                         const CancelToken* cancel) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  std::vector<uint64_t> sizes;
  for (const TensorEntry& t : entries) {
    if (t.name == "__metadata__" || header.contains(t.name))
      return makeError("cannot write '" + path.string() + "': tensor name '" + t.name +
                       "' is reserved or used twice");
    uint64_t n = dtypeSize(t.dtype);
    for (int64_t d : t.shape) n *= uint64_t(d);
    nlohmann::ordered_json e;
    e["dtype"] = std::string(dtypeName(t.dtype));
    e["shape"] = t.shape;
    e["data_offsets"] = {offset, offset + n};
    offset += n;
    sizes.push_back(n);
    header[t.name] = std::move(e);
  }
  std::string text = header.dump();
  while ((8 + text.size()) % 8 != 0) text.push_back(' ');
  return writeFileAtomically(path, [&](std::FILE* f) -> Status {
    unsigned char len[8];
    uint64_t n = text.size();
    for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(n >> (8 * i));
    if (std::fwrite(len, 1, 8, f) != 8 || std::fwrite(text.data(), 1, n, f) != n)
      return makeError("cannot write '" + path.string() + "'");
    size_t pending = 0;  // bytes since the disk was last asked to start writing
    for (size_t i = 0; i < entries.size(); ++i) {
      if (isCancelled(cancel)) return makeError("cancelled");
      auto t = next(i);
      if (!t) return t.error();
      if (t->dtype() != entries[i].dtype || t->shape() != entries[i].shape || t->nbytes() != sizes[i])
        return makeError("cannot write '" + path.string() + "': tensor '" + entries[i].name +
                         "' arrived as " + std::string(dtypeName(t->dtype())) + " " +
                         shapeString(t->shape()) + ", the header says " +
                         std::string(dtypeName(entries[i].dtype)) + " " +
                         shapeString(entries[i].shape));
      if (sizes[i] != 0 && std::fwrite(t->raw(), 1, sizes[i], f) != sizes[i])
        return makeError("cannot write '" + path.string() + "'");
      if ((pending += sizes[i]) >= (size_t(16) << 20)) {  // large files: write back as we go
        startWriteback(f);
        pending = 0;
      }
    }
    return Ok{};
  });
}

Status writeSafetensors(const std::filesystem::path& path,
                        const std::vector<std::pair<std::string, Tensor>>& tensors,
                        const std::map<std::string, std::string>& metadata,
                        const CancelToken* cancel) {
  std::vector<TensorEntry> entries;
  entries.reserve(tensors.size());
  for (const auto& [name, t] : tensors) entries.push_back({name, t.dtype(), t.shape()});
  return streamSafetensors(
      path, entries, [&](size_t i) -> Result<Tensor> { return tensors[i].second; }, metadata,
      cancel);
}

}  // namespace attn
