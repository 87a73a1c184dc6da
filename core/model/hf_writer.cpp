#include "core/model/hf_writer.h"

#include "core/io/atomic_file.h"
#include "core/model/pruned_heads.h"

#include <algorithm>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <system_error>

namespace attn {

namespace {
namespace fs = std::filesystem;

}  // namespace

const char* const kModelSideFiles[8] = {"config.json",           "tokenizer.json",
                                        "tokenizer_config.json", "special_tokens_map.json",
                                        "vocab.txt",             "vocab.json",
                                        "merges.txt",            "generation_config.json"};

std::string checkpointPrefix(const Checkpoint& ck, Architecture arch) {
  const std::string probe =
      arch == Architecture::Gpt2 ? "wte.weight" : "embeddings.word_embeddings.weight";
  for (const auto& [name, item] : ck.tensors)
    if (name.size() >= probe.size() &&
        name.compare(name.size() - probe.size(), probe.size(), probe) == 0)
      return name.substr(0, name.size() - probe.size());
  return "";
}

namespace {

std::string withOldNormNames(std::string name) {  // LayerNorm.gamma / .beta
  auto swap = [&](const std::string& from, const std::string& to) {
    if (name.size() > from.size() &&
        name.compare(name.size() - from.size(), from.size(), from) == 0)
      name = name.substr(0, name.size() - from.size()) + to;
  };
  swap(".weight", ".gamma");
  swap(".bias", ".beta");
  return name;
}
}  // namespace

namespace {
Tensor convert(const Tensor& t, DType dtype) {
  if (dtype == DType::F32 || t.dtype() != DType::F32) return t;
  std::vector<uint16_t> v(static_cast<size_t>(t.numel()));
  for (size_t i = 0; i < v.size(); ++i)
    v[i] = dtype == DType::F16 ? floatToHalf(t.f32()[i]) : floatToBf16(t.f32()[i]);
  auto owner = std::make_shared<std::vector<uint16_t>>(std::move(v));
  return Tensor(dtype, t.shape(), owner->data(), owner);
}
}  // namespace

void WeightFeed::publish(const Model& model, int upTo) {
  std::lock_guard lock(mutex_);
  if (upTo <= upTo_ || complete_) return;
  upTo_ = upTo;
  complete_ = upTo >= model.config.layers;
  for (const auto& [name, t] : namedWeights(model.config, model.weights))
    if (!ready_.count(name) && weightLayer(model.weights, t) <= upTo) ready_.emplace(name, *t);
  changed_.notify_all();
}

void WeightFeed::fail(std::string message) {
  std::lock_guard lock(mutex_);
  if (!error_) error_ = std::move(message);
  changed_.notify_all();
}

Result<Tensor> WeightFeed::take(const std::string& name) {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return error_ || complete_ || ready_.count(name); });
  if (error_) return makeError(*error_);
  const auto it = ready_.find(name);
  if (it == ready_.end()) return makeError("the compressed model has no tensor '" + name + "'");
  return it->second;
}

Status writeHfModel(const fs::path& dir, const Model& source, const ModelWeights& weights,
                    const HfWriteOptions& options) {
  WeightFeed feed;
  Model view;  // the given weights under the source's config, for the feed
  view.config = source.config;
  view.weights = weights;
  feed.publish(view, std::numeric_limits<int>::max());
  return writeHfModel(dir, source, feed, options);
}

Status writeHfModel(const fs::path& dir, const Model& source, WeightFeed& feed,
                    const HfWriteOptions& options) {
  if (options.dtype != DType::F32 && options.dtype != DType::F16 && options.dtype != DType::BF16)
    return makeError("weights can be written as F32, F16 or BF16");
  std::error_code ec;
  if (source.checkpoint.tensors.empty())
    return makeError("the model was not loaded from a checkpoint; nothing to write it after");
  const fs::path from = sourceDirectory(source);
  if (fs::exists(dir, ec) && !fs::is_empty(dir, ec))
    return makeError("'" + dir.string() + "' exists and is not empty");
  if (fs::exists(dir, ec) && fs::equivalent(dir, from, ec))
    return makeError("refusing to write over the source model");
  auto side = readSideFiles(source);
  if (!side) return side.error();

  // Checkpoint name → the engine's tensor replacing it (name, layer, and the
  // source's tensor for its shape and dtype).
  struct Ours {
    std::string name;
    int layer;
    const Tensor* before;
  };
  const std::string prefix = checkpointPrefix(source.checkpoint, source.config.arch);
  std::map<std::string, Ours> ours;
  for (const auto& [name, t] : namedWeights(source.config, source.weights)) {
    const Ours o{name, weightLayer(source.weights, t), t};
    ours[prefix + name] = o;
    ours[prefix + withOldNormNames(name)] = o;
  }
  auto written = [&](const std::string& name) -> Result<Tensor> {
    auto t = feed.take(name);
    if (!t) return t.error();
    return convert(*t, options.dtype);
  };
  std::map<std::string, std::string> meta = source.checkpoint.metadata;
  for (const auto& [k, v] : options.extraMetadata) meta[k] = v;
  meta["format"] = "pt";  // transformers refuses files without it

  // Removed heads leave the tensors; config.json says which (original indices).
  const auto heads = mergeHeads(source.config.prunedHeads, options.removedHeads);
  if (!heads.empty()) {
    for (const auto& [layer, hs] : heads)
      if (layer < 0 || layer >= source.config.layers || int(hs.size()) >= source.config.heads ||
          hs.front() < 0 || hs.back() >= source.config.heads)
        return makeError("cannot remove heads " + std::to_string(hs.size()) + " of layer " +
                         std::to_string(layer) + " (" + std::to_string(source.config.heads) +
                         " heads; at least one must stay)");
    std::vector<std::pair<std::string, Tensor>> tensors;
    for (const auto& [name, item] : source.checkpoint.tensors) {
      const auto it = ours.find(name);
      if (it == ours.end()) {
        tensors.emplace_back(name, item.tensor);
        continue;
      }
      auto t = written(it->second.name);
      if (!t) return t.error();
      tensors.emplace_back(name, std::move(*t));
    }
    if (Status st = cutHeads(source.config, prefix, heads, tensors); !st) return st;
    try {
      auto config = nlohmann::ordered_json::parse((*side)["config.json"]);
      nlohmann::ordered_json ph = nlohmann::ordered_json::object();
      for (const auto& [layer, hs] : heads) ph[std::to_string(layer)] = hs;
      config["pruned_heads"] = ph;
      (*side)["config.json"] = config.dump(2) + "\n";
    } catch (const std::exception& e) {
      return makeError("config.json of the source: " + std::string(e.what()));
    }
    return writeModelDirectory(dir, *side, tensors, meta, options.cancel, options.beforeCommit);
  }

  // In the order the tensors become final: the checkpoint's others (pooler, heads,
  // buffers: there already), then by layer (embeddings -1, final norm last).
  struct Slot {
    int layer;
    const std::string* name;
    const Checkpoint::Item* item;
    const Ours* ours;
  };
  std::vector<Slot> slots;
  for (const auto& [name, item] : source.checkpoint.tensors) {
    const auto it = ours.find(name);
    slots.push_back({it == ours.end() ? -2 : it->second.layer, &name, &item,
                     it == ours.end() ? nullptr : &it->second});
  }
  std::stable_sort(slots.begin(), slots.end(),
                   [](const Slot& a, const Slot& b) { return a.layer < b.layer; });
  std::vector<TensorEntry> entries;
  for (const Slot& s : slots) {
    const Tensor& shapeOf = s.ours ? *s.ours->before : s.item->tensor;
    const DType dtype =
        s.ours && shapeOf.dtype() == DType::F32 ? options.dtype : shapeOf.dtype();
    entries.push_back({*s.name, dtype, shapeOf.shape()});
  }
  return writeModelDirectory(
      dir, *side, entries,
      [&](size_t i) -> Result<Tensor> {
        return slots[i].ours ? written(slots[i].ours->name) : Result<Tensor>(slots[i].item->tensor);
      },
      meta, options.cancel, options.beforeCommit);
}

fs::path sourceDirectory(const Model& source) {
  std::error_code ec;
  return fs::is_directory(source.source, ec) ? source.source : source.source.parent_path();
}

Result<std::map<std::string, std::string>> readSideFiles(const Model& source) {
  if (!source.sideFiles.empty()) {
    if (!source.sideFiles.count("config.json"))
      return makeError(source.source.string() + " carries no config.json");
    return source.sideFiles;
  }
  const fs::path from = sourceDirectory(source);
  std::map<std::string, std::string> files;
  std::error_code ec;
  for (const char* f : kModelSideFiles) {
    if (!fs::exists(from / f, ec)) continue;
    std::ifstream in(from / f, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    if (!in && !in.eof()) return makeError("cannot read " + (from / f).string());
    files[f] = text.str();
  }
  if (!files.count("config.json"))
    return makeError("no config.json in '" + from.string() + "' to copy");
  return files;
}

Status writeModelDirectory(const fs::path& dir, const std::map<std::string, std::string>& sideFiles,
                           const std::vector<std::pair<std::string, Tensor>>& tensors,
                           const std::map<std::string, std::string>& metadata,
                           const CancelToken* cancel, const std::function<Status()>& beforeCommit) {
  std::vector<TensorEntry> entries;
  entries.reserve(tensors.size());
  for (const auto& [name, t] : tensors) entries.push_back({name, t.dtype(), t.shape()});
  return writeModelDirectory(
      dir, sideFiles, entries, [&](size_t i) -> Result<Tensor> { return tensors[i].second; },
      metadata, cancel, beforeCommit);
}

Status writeModelDirectory(const fs::path& dir, const std::map<std::string, std::string>& sideFiles,
                           const std::vector<TensorEntry>& entries,
                           const std::function<Result<Tensor>(size_t)>& next,
                           const std::map<std::string, std::string>& metadata,
                           const CancelToken* cancel, const std::function<Status()>& beforeCommit) {
  return writeDirectoryAtomically(dir, [&](const fs::path& tmp) -> Status {
    for (const auto& [name, text] : sideFiles) {
      std::ofstream out(tmp / name, std::ios::binary);
      out.write(text.data(), std::streamsize(text.size()));
      out.close();
      if (!out) return makeError("cannot write " + (tmp / name).string());
    }
    if (Status st = streamSafetensors(tmp / "model.safetensors", entries, next, metadata, cancel);
        !st)
      return st;
    return beforeCommit ? beforeCommit() : Status(Ok{});
  });
}

}  // namespace attn
