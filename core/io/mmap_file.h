// Read-only memory mapping of a whole file (POSIX mmap). Shared so tensors can
// borrow its bytes and keep it mapped for as long as they live.
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>

#include "core/util/result.h"

namespace attn {

class MappedFile {
 public:
  static Result<std::shared_ptr<const MappedFile>> open(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const unsigned char* data() const { return data_; }
  size_t size() const { return size_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  MappedFile() = default;
  const unsigned char* data_ = nullptr;
  size_t size_ = 0;
  std::filesystem::path path_;
};

}  // namespace attn
