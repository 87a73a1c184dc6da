#include "core/model/hf_writer.h"

#include "core/io/atomic_file.h"
#include "core/model/pruned_heads.h"

#include <fstream>
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

Status writeHfModel(const fs::path& dir, const Model& source, const ModelWeights& weights,
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

  // Name → tensor to write: the checkpoint's, with the engine's weights replacing theirs.
  const std::string prefix = checkpointPrefix(source.checkpoint, source.config.arch);
  std::map<std::string, const Tensor*> ours;
  for (const auto& [name, t] : namedWeights(source.config, weights)) {
    ours[prefix + name] = t;
    ours[prefix + withOldNormNames(name)] = t;
  }
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const auto& [name, item] : source.checkpoint.tensors) {
    const auto it = ours.find(name);
    tensors.emplace_back(name, it != ours.end() ? convert(*it->second, options.dtype) : item.tensor);
  }

  // Removed heads leave the tensors; config.json says which (original indices).
  const auto heads = mergeHeads(source.config.prunedHeads, options.removedHeads);
  if (!heads.empty()) {
    for (const auto& [layer, hs] : heads)
      if (layer < 0 || layer >= source.config.layers || int(hs.size()) >= source.config.heads ||
          hs.front() < 0 || hs.back() >= source.config.heads)
        return makeError("cannot remove heads " + std::to_string(hs.size()) + " of layer " +
                         std::to_string(layer) + " (" + std::to_string(source.config.heads) +
                         " heads; at least one must stay)");
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
  }

  std::map<std::string, std::string> meta = source.checkpoint.metadata;
  for (const auto& [k, v] : options.extraMetadata) meta[k] = v;
  meta["format"] = "pt";  // transformers refuses files without it
  return writeModelDirectory(dir, *side, tensors, meta, options.cancel, options.beforeCommit);
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
  return writeDirectoryAtomically(dir, [&](const fs::path& tmp) -> Status {
    for (const auto& [name, text] : sideFiles) {
      std::ofstream out(tmp / name, std::ios::binary);
      out.write(text.data(), std::streamsize(text.size()));
      out.close();
      if (!out) return makeError("cannot write " + (tmp / name).string());
    }
    if (Status st = writeSafetensors(tmp / "model.safetensors", tensors, metadata, cancel); !st)
      return st;
    return beforeCommit ? beforeCommit() : Status(Ok{});
  });
}

}  // namespace attn
