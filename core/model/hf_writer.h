// Writing a model back as a Hugging Face directory that loads wherever such
// checkpoints load (transformers, this engine):
//   config.json and tokenizer files   copied from the source model's directory
//   model.safetensors                 every tensor of the source checkpoint under its
//                                     own name: the given (e.g. quantized, then
//                                     dequantized) weights in float32 where the engine
//                                     holds them, all others (pooler, task heads, tied
//                                     copies, buffers) unchanged
// The directory is built as "<dir>.partial-XXXXXX" beside the target and renamed
// at the end, so a failed write leaves nothing; an existing non-empty target is
// refused; the source directory is never written.
#pragma once

#include <filesystem>
#include <functional>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "core/model/model.h"

namespace attn {

// dtype: what the engine's weights are written as (F32, or F16 / BF16 rounded to
// nearest even as torch's .half() / .bfloat16()); the checkpoint's other tensors
// keep their own dtype. extraMetadata is merged into the safetensors metadata.
struct HfWriteOptions {
  DType dtype = DType::F32;
  std::map<std::string, std::string> extraMetadata;
  const CancelToken* cancel = nullptr;  // a cancelled write leaves nothing behind
  // Heads to cut out of the written tensors (with the config's own pruned_heads),
  // recorded in config.json "pruned_heads" as transformers does (pruned_heads.h).
  std::vector<std::pair<int, int>> removedHeads;
  // Called once the files are written and flushed, before they are moved into
  // place; an error there leaves nothing behind (e.g. work done alongside the write).
  std::function<Status()> beforeCommit;
};

// The task-head prefix of a checkpoint's tensor names ("", "bert.", "transformer.", …).
std::string checkpointPrefix(const Checkpoint& ck, Architecture arch);
// Tokenizer and config files copied into written model directories.
extern const char* const kModelSideFiles[8];

// The model's config and tokenizer files (name → contents): Model::sideFiles, or
// those of kModelSideFiles found in the source's directory. Error without config.json.
Result<std::map<std::string, std::string>> readSideFiles(const Model& source);
// The directory the source model came from (itself, or the folder of its file).
std::filesystem::path sourceDirectory(const Model& source);

// A model directory: the side files (config, tokenizer) and model.safetensors
// with these tensors and metadata, written atomically.
Status writeModelDirectory(const std::filesystem::path& dir,
                           const std::map<std::string, std::string>& sideFiles,
                           const std::vector<std::pair<std::string, Tensor>>& tensors,
                           const std::map<std::string, std::string>& metadata,
                           const CancelToken* cancel = nullptr,
                           const std::function<Status()>& beforeCommit = {});
// The same, with the tensors' data handed over as it is written (streamSafetensors).
Status writeModelDirectory(const std::filesystem::path& dir,
                           const std::map<std::string, std::string>& sideFiles,
                           const std::vector<TensorEntry>& entries,
                           const std::function<Result<Tensor>(size_t)>& next,
                           const std::map<std::string, std::string>& metadata,
                           const CancelToken* cancel = nullptr,
                           const std::function<Status()>& beforeCommit = {});

// The engine's weights as they become final, handed from the thread that computes
// them (e.g. quantizeModel, layer by layer) to a writer on another thread.
class WeightFeed {
 public:
  // The tensors of `model` in layers <= upTo (weightLayer: -1 the embeddings;
  // model.config.layers or more: every one, and the feed is complete) are final.
  // They are shared, not copied; call while nothing edits them.
  void publish(const Model& model, int upTo);
  // The writer stops with this error (e.g. computing the weights failed).
  void fail(std::string message);
  // Blocks until the tensor (a namedWeights name) is final; an error after fail(),
  // or when the feed is complete without it.
  Result<Tensor> take(const std::string& name);

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::map<std::string, Tensor> ready_;
  int upTo_ = -2;
  bool complete_ = false;
  std::optional<std::string> error_;
};

Status writeHfModel(const std::filesystem::path& dir, const Model& source,
                    const ModelWeights& weights, const HfWriteOptions& options = {});
// The same file, written while the weights are still being computed: `source`'s
// weights give the names and shapes, `feed` the values. Tensors are laid out in
// the order they become final (those the engine does not hold, the embeddings,
// then layer by layer), so the disk writes the early layers while later ones are
// computed. With heads to cut every weight is awaited first (the shapes change).
Status writeHfModel(const std::filesystem::path& dir, const Model& source, WeightFeed& feed,
                    const HfWriteOptions& options = {});

}  // namespace attn
