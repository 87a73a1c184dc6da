#include "core/compress/compressed.h"

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <system_error>

#include "core/io/atomic_file.h"
#include "core/model/hf_writer.h"
#include "core/model/targets.h"

namespace attn::compress {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

namespace {

// "h.0.attn.c_attn[q].weight" → "h.0.attn.c_attn.weight"; other names unchanged.
std::string hfNameOf(const std::string& matrix) {
  const size_t open = matrix.find('[');
  if (open == std::string::npos) return matrix;
  const size_t close = matrix.find(']', open);
  return matrix.substr(0, open) + matrix.substr(close + 1);
}

template <class T>
Tensor owned(DType dtype, Shape shape, std::vector<T> v) {
  auto holder = std::make_shared<std::vector<T>>(std::move(v));
  return Tensor(dtype, std::move(shape), holder->data(), holder);
}

Result<quant::Method> methodFrom(const std::string& s) {
  for (const auto& m : quant::kMethods)
    if (s == m.name) return m.method;
  return makeError("unknown method '" + s + "'");
}

}  // namespace

Result<CompressedTensors> compressedTensors(const Model& source, const AppliedPlan& applied,
                                            const CompressionPlan& plan) {
  if (source.checkpoint.tensors.empty())
    return makeError("the model was not loaded from a checkpoint; nothing to write it after");
  const ModelConfig& c = source.config;
  const std::string prefix = checkpointPrefix(source.checkpoint, c.arch);

  // Which matrices are stored compressed, and the values of every matrix.
  std::map<std::string, const quant::QuantizedTensor*> codes;
  for (size_t i = 0; i < applied.quantized.size() && i < applied.codes.size(); ++i)
    codes[applied.quantized[i].name] = applied.codes[i].get();
  std::map<std::string, const sparse::Bitmap*> masks;
  for (const auto& t : applied.pruned)
    if (!codes.count(t.name)) masks[t.name] = &t.mask;
  std::map<std::string, std::vector<float>> values;  // pruned-only and leftover thirds
  std::map<std::string, std::pair<int64_t, int64_t>> shapes;  // [out, in] of each stored matrix
  std::set<std::string> compressedHf;
  std::set<std::pair<int, int>> needValues;  // (layer, target) whose floats are stored
  for (const auto& [name, q] : codes) {
    compressedHf.insert(hfNameOf(name));
    shapes[name] = {q->rows, q->cols};
  }
  for (const auto& t : applied.pruned)
    if (!codes.count(t.name)) {
      compressedHf.insert(hfNameOf(t.name));
      needValues.insert({t.layer, int(t.target)});
    }
  for (const auto& r : applied.quantized)  // a fused tensor stored in parts: every third
    if (hfNameOf(r.name) != r.name)
      for (Target t : {Target::Q, Target::K, Target::V}) needValues.insert({r.layer, int(t)});
  if (!needValues.empty()) {  // reads only those matrices (the walk copies what it visits)
    ModelWeights w = applied.model->weights;
    Status st = editWeightMatrices(
        c, w, [&](int layer, Target t) { return needValues.count({layer, int(t)}) > 0; },
        [&](const WeightMatrix& m, std::vector<float>& v) -> Status {
          if (compressedHf.count(hfNameOf(m.name)) && !codes.count(m.name)) {
            values[m.name] = v;
            shapes[m.name] = {m.rows, m.cols};
          }
          return Ok{};
        });
    if (!st) return st.error();
  }

  std::vector<std::pair<std::string, Tensor>> tensors;
  std::map<std::string, const Tensor*> current;  // engine tensors with their applied values
  for (const auto& [name, t] : namedWeights(c, applied.model->weights)) current[prefix + name] = t;
  for (const auto& [name, item] : source.checkpoint.tensors) {
    if (name.compare(0, prefix.size(), prefix) == 0 &&
        compressedHf.count(name.substr(prefix.size())))
      continue;
    const auto it = current.find(name);
    tensors.emplace_back(name, it != current.end() ? *it->second : item.tensor);
  }
  Json index = Json::object();
  for (const std::string& hf : compressedHf)
    if (source.checkpoint.find(prefix + hf) == nullptr)
      return makeError("the source checkpoint has no tensor '" + prefix + hf + "'");
  auto entry = [&](const std::string& matrix) {
    const auto& [rows, cols] = shapes.at(matrix);
    const Tensor* t = source.checkpoint.find(prefix + hfNameOf(matrix));
    return Json{{"hf_name", hfNameOf(matrix)}, {"hf_shape", t->shape()}, {"rows", rows},
                {"cols", cols}};
  };
  for (const auto& [name, q] : codes) {
    const std::string base = prefix + name;
    Json e = entry(name);
    e["encoding"] = "quantized";
    for (const auto& t : quant::kMethods)
      if (t.method == q->spec.method) e["method"] = t.name;
    e["bits"] = q->spec.bits;
    e["granularity"] = quant::granularityName(q->spec.granularity);
    e["group"] = q->spec.groupSize;
    e["symmetric"] = q->spec.symmetric;
    index[name] = e;
    tensors.emplace_back(base + ".qweight", owned(DType::U8, {int64_t(q->packed.size())}, q->packed));
    if (!q->scales.empty())
      tensors.emplace_back(base + ".scales", owned(DType::F32, {int64_t(q->scales.size())}, q->scales));
    if (!q->zeros.empty())
      tensors.emplace_back(base + ".zeros", owned(DType::U8, {int64_t(q->zeros.size())}, q->zeros));
    if (!q->codebook.empty()) {
      const int64_t levels = int64_t(1) << q->spec.bits;
      tensors.emplace_back(base + ".codebook",
                           owned(DType::F32, {int64_t(q->codebook.size()) / levels, levels}, q->codebook));
    }
    if (!q->exponents.empty())
      tensors.emplace_back(base + ".exponents",
                           owned(DType::I8, {int64_t(q->exponents.size())}, q->exponents));
  }
  for (const auto& [name, v] : values) {
    const std::string base = prefix + name;
    Json e = entry(name);
    const auto mask = masks.find(name);
    if (mask != masks.end()) {
      e["encoding"] = "sparse";
      std::vector<uint8_t> bits(size_t((mask->second->size() + 7) / 8), 0);
      std::vector<float> kept;
      for (int64_t i = 0; i < mask->second->size(); ++i)
        if (mask->second->get(i)) {
          bits[size_t(i >> 3)] |= uint8_t(1u << (i & 7));
          kept.push_back(v[size_t(i)]);
        }
      const int64_t nBits = int64_t(bits.size()), nKept = int64_t(kept.size());  // before the moves
      tensors.emplace_back(base + ".mask", owned(DType::U8, {nBits}, std::move(bits)));
      tensors.emplace_back(base + ".values", owned(DType::F32, {nKept}, std::move(kept)));
    } else {  // a third of a fused tensor the plan leaves in float32
      e["encoding"] = "float";
      tensors.emplace_back(base + ".values", owned(DType::F32, {int64_t(v.size())}, v));
    }
    index[name] = e;
  }
  std::map<std::string, std::string> meta;
  meta["format"] = kCompressedFormat;
  meta["attnstudio_plan"] = planJson(plan);
  meta["attnstudio_tensors"] = index.dump();
  meta["attnstudio_prefix"] = prefix;  // the probe tensor may itself be compressed
  return CompressedTensors{std::move(tensors), std::move(meta)};
}

Status writeCompressedModel(const fs::path& dir, const Model& source, const AppliedPlan& applied,
                            const CompressionPlan& plan, const CancelToken* cancel,
                            const std::function<Status()>& beforeCommit) {
  std::error_code ec;
  const fs::path from = sourceDirectory(source);
  if (fs::exists(dir, ec) && fs::exists(from, ec) && fs::equivalent(dir, from, ec))
    return makeError("refusing to write over the source model");
  if (fs::exists(dir, ec) && !fs::is_empty(dir, ec))
    return makeError("'" + dir.string() + "' exists and is not empty");
  auto side = readSideFiles(source);
  if (!side) return side.error();
  auto layout = compressedTensors(source, applied, plan);
  if (!layout) return layout.error();
  if (isCancelled(cancel)) return makeError("cancelled");
  return writeModelDirectory(dir, *side, layout->tensors, layout->metadata, cancel, beforeCommit);
}

bool isCompressed(const Checkpoint& ck) {
  const auto it = ck.metadata.find("format");
  return it != ck.metadata.end() && it->second == kCompressedFormat;
}

Result<Checkpoint> decompressCheckpoint(const ModelConfig& config, const Checkpoint& ck) {
  Json index;
  try {
    index = Json::parse(ck.metadata.at("attnstudio_tensors"));
  } catch (...) {
    return makeError("compressed checkpoint: attnstudio_tensors is missing or not JSON");
  }
  const auto pre = ck.metadata.find("attnstudio_prefix");
  const std::string prefix = pre != ck.metadata.end() ? pre->second : checkpointPrefix(ck, config.arch);
  Checkpoint out;
  out.files = ck.files;
  out.metadata = ck.metadata;  // decoded: an ordinary checkpoint from here on
  out.metadata.erase("attnstudio_tensors");
  out.metadata.erase("attnstudio_prefix");
  out.metadata["format"] = "pt";
  out.totalFileBytes = ck.totalFileBytes;
  std::set<std::string> parts, placeholders;
  std::map<std::string, std::vector<float>> decoded;  // matrix → [rows, cols]
  try {
    for (const auto& [matrix, e] : index.items()) {
      const std::string base = prefix + matrix;
      const int64_t rows = e.at("rows"), cols = e.at("cols");
      if (rows <= 0 || cols <= 0 || rows > (int64_t(1) << 31) || cols > (int64_t(1) << 31))
        return makeError(matrix + ": bad shape");
      auto part = [&](const char* suffix, DType dtype) -> Result<const Tensor*> {
        const Tensor* t = ck.find(base + suffix);
        if (t == nullptr) return makeError("compressed checkpoint: '" + base + suffix + "' is missing");
        if (t->dtype() != dtype)
          return makeError("compressed checkpoint: '" + base + suffix + "' has the wrong dtype");
        parts.insert(base + suffix);
        return t;
      };
      const std::string encoding = e.at("encoding");
      std::vector<float> v;
      if (encoding == "quantized") {
        quant::QuantizedTensor q;
        auto method = methodFrom(e.at("method"));
        if (!method) return makeError(matrix + ": " + method.message());
        q.spec.method = *method;
        q.spec.bits = e.at("bits");
        const std::string g = e.at("granularity");
        q.spec.granularity = g == "tensor"    ? quant::Granularity::Tensor
                             : g == "channel" ? quant::Granularity::Channel
                                              : quant::Granularity::Group;
        q.spec.groupSize = e.at("group");
        q.spec.symmetric = e.at("symmetric");
        if (Status st = quant::validate(q.spec, rows, cols); !st)
          return makeError(matrix + ": " + st.message());
        q.rows = rows;
        q.cols = cols;
        const int64_t blocks = quant::blockCount(q.spec, rows, cols);
        auto codes = part(".qweight", DType::U8);
        if (!codes) return codes.error();
        const int64_t need = (rows * cols * q.spec.bits + 7) / 8;
        if ((*codes)->numel() != need)
          return makeError(base + ".qweight has " + std::to_string((*codes)->numel()) +
                           " bytes; " + std::to_string(need) + " expected");
        const auto* bytes = static_cast<const uint8_t*>((*codes)->raw());
        q.packed.assign(bytes, bytes + need);
        auto f32 = [&](const char* suffix, int64_t n, std::vector<float>& dst) -> Status {
          auto t = part(suffix, DType::F32);
          if (!t) return t.error();
          if ((*t)->numel() != n)
            return makeError(base + suffix + " has " + std::to_string((*t)->numel()) +
                             " values; " + std::to_string(n) + " expected");
          dst.assign((*t)->f32(), (*t)->f32() + n);
          return Ok{};
        };
        const quant::Method m = q.spec.method;
        if (m == quant::Method::Uniform || m == quant::Method::Binary || m == quant::Method::Ternary)
          if (Status st = f32(".scales", blocks, q.scales); !st) return st.error();
        if (m == quant::Method::Uniform && !q.spec.symmetric) {
          auto z = part(".zeros", DType::U8);
          if (!z) return z.error();
          if ((*z)->numel() != blocks) return makeError(base + ".zeros has the wrong size");
          const auto* zp = static_cast<const uint8_t*>((*z)->raw());
          q.zeros.assign(zp, zp + blocks);
        }
        if (m == quant::Method::KMeans)
          if (Status st = f32(".codebook", blocks << q.spec.bits, q.codebook); !st) return st.error();
        if (m == quant::Method::Log2) {
          auto x = part(".exponents", DType::I8);
          if (!x) return x.error();
          if ((*x)->numel() != blocks) return makeError(base + ".exponents has the wrong size");
          const auto* xp = static_cast<const int8_t*>((*x)->raw());
          q.exponents.assign(xp, xp + blocks);
        }
        v = q.dequantize();
      } else if (encoding == "sparse") {
        auto mask = part(".mask", DType::U8);
        if (!mask) return mask.error();
        auto vals = part(".values", DType::F32);
        if (!vals) return vals.error();
        if ((*mask)->numel() != (rows * cols + 7) / 8)
          return makeError(base + ".mask has " + std::to_string((*mask)->numel()) + " bytes; " +
                           std::to_string((rows * cols + 7) / 8) + " expected");
        const auto* bits = static_cast<const uint8_t*>((*mask)->raw());
        v.assign(size_t(rows * cols), 0.0f);
        int64_t k = 0;
        for (int64_t i = 0; i < rows * cols; ++i)
          if ((bits[i >> 3] >> (i & 7)) & 1) {
            if (k >= (*vals)->numel()) return makeError(base + ".values has too few values");
            v[size_t(i)] = (*vals)->f32()[k++];
          }
        if (k != (*vals)->numel()) return makeError(base + ".values has too many values");
      } else if (encoding == "float") {
        auto vals = part(".values", DType::F32);
        if (!vals) return vals.error();
        if ((*vals)->numel() != rows * cols) return makeError(base + ".values has the wrong size");
        v.assign((*vals)->f32(), (*vals)->f32() + rows * cols);
      } else {
        return makeError(matrix + ": unknown encoding '" + encoding + "'");
      }
      decoded[matrix] = std::move(v);
      // A placeholder of the Hugging Face tensor, filled below.
      const std::string hf = prefix + std::string(e.at("hf_name"));
      if (!out.tensors.count(hf)) {
        placeholders.insert(hf);
        const Shape shape = e.at("hf_shape").get<Shape>();
        auto n = shapeNumel(shape);
        if (!n || *n <= 0 || *n > (int64_t(1) << 34)) return makeError(hf + ": bad shape");
        out.tensors[hf] = {Tensor::zerosF32(shape), ck.tensors.begin()->second.file};
      }
    }
  } catch (const nlohmann::json::exception& ex) {
    return makeError("compressed checkpoint: attnstudio_tensors is malformed (" +
                     std::string(ex.what()) + ")");
  }
  for (const auto& [name, item] : ck.tensors)
    if (!parts.count(name)) out.tensors[name] = item;
  // Bind once with the placeholders, write the decoded matrices in (the walk knows
  // every layout: Conv1D transposes, fused thirds), then read the HF tensors back.
  std::vector<std::string> warnings;
  auto w = bindWeights(config, out, warnings);
  if (!w) return makeError("compressed checkpoint: " + w.message());
  Status st = editWeightMatrices(config, *w, [](int, Target) { return true; },
                                 [&](const WeightMatrix& m, std::vector<float>& v) -> Status {
                                   const auto it = decoded.find(m.name);
                                   if (it == decoded.end()) return Ok{};
                                   if (it->second.size() != v.size())
                                     return makeError(m.name + ": decoded size does not match");
                                   v = it->second;
                                   return Ok{};
                                 });
  if (!st) return makeError("compressed checkpoint: " + st.message());
  for (const auto& [name, t] : namedWeights(config, *w))
    if (placeholders.count(prefix + name)) out.tensors[prefix + name].tensor = *t;
  return out;
}

}  // namespace attn::compress
