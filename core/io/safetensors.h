// safetensors checkpoints: single files, sharded directories, and a writer.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/io/mmap_file.h"
#include "core/tensor/tensor.h"
#include "core/util/parallel.h"
#include "core/util/result.h"

namespace attn {

struct SafetensorsEntry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin = 0;  // relative to the first byte after the header
  uint64_t end = 0;
};

class SafetensorsFile {
 public:
  // Maps the file and validates its header (see safetensors.cpp for every check).
  static Result<std::shared_ptr<const SafetensorsFile>> open(const std::filesystem::path& path);

  const std::vector<SafetensorsEntry>& entries() const { return entries_; }  // by offset
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const SafetensorsEntry* find(const std::string& name) const;
  // Borrows the mapped bytes; the tensor keeps the mapping alive.
  Tensor tensor(const SafetensorsEntry& e) const;
  const std::filesystem::path& path() const { return file_->path(); }
  const MappedFile& mapping() const { return *file_; }
  uint64_t fileSize() const { return file_->size(); }

 private:
  std::shared_ptr<const MappedFile> file_;
  uint64_t dataStart_ = 0;
  std::vector<SafetensorsEntry> entries_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// Every tensor of a checkpoint, whichever files it is spread over.
struct Checkpoint {
  struct Item {
    Tensor tensor;
    std::string file;  // file name it came from
  };
  std::vector<std::shared_ptr<const SafetensorsFile>> files;
  std::map<std::string, Item> tensors;
  std::map<std::string, std::string> metadata;  // of the first file
  uint64_t totalFileBytes = 0;

  const Tensor* find(const std::string& name) const;
  // The resident pages of a tensor read from one of the files (or of every file)
  // are dropped; reading them again reloads them from the file. Tensors held in
  // memory (not mapped) are left alone.
  void releasePages(const Tensor& t) const;
  void releaseAllPages() const;
};

// path: a model directory (model.safetensors, or model.safetensors.index.json
// with its shards) or one .safetensors file.
Result<Checkpoint> openCheckpoint(const std::filesystem::path& path);

// A tensor's place in a file written before its data exists.
struct TensorEntry {
  std::string name;
  DType dtype;
  Shape shape;
};
// Writes the header for `entries`, then each tensor's data in order as next(i)
// hands it over (it may block, e.g. until the tensor has been computed: the disk
// works on the earlier ones meanwhile). An error from next, or a tensor whose
// dtype or shape is not its entry's, ends the write and leaves nothing. Atomic.
Status streamSafetensors(const std::filesystem::path& path, const std::vector<TensorEntry>& entries,
                         const std::function<Result<Tensor>(size_t)>& next,
                         const std::map<std::string, std::string>& metadata = {{"format", "pt"}},
                         const CancelToken* cancel = nullptr);  // checked between tensors

// Writes tensors in the given order, header padded to 8 bytes; atomic (a
// temporary file in the target folder renamed over the target).
Status writeSafetensors(const std::filesystem::path& path,
                        const std::vector<std::pair<std::string, Tensor>>& tensors,
                        const std::map<std::string, std::string>& metadata = {{"format", "pt"}},
                        const CancelToken* cancel = nullptr);  // checked between tensors

}  // namespace attn
