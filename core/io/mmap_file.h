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
  // Lets the kernel drop the resident pages of [p, p + bytes) (whole pages inside
  // it; p must point into this mapping). The data stay readable: they are read
  // from the file again when touched. Lowers the resident memory of a run that is
  // done with them (MADV_DONTNEED on a private read-only file mapping).
  void release(const void* p, size_t bytes) const;
  bool contains(const void* p) const {
    const auto* b = static_cast<const unsigned char*>(p);
    return b >= data_ && b < data_ + size_;
  }

 private:
  MappedFile() = default;
  const unsigned char* data_ = nullptr;
  size_t size_ = 0;
  std::filesystem::path path_;
};

}  // namespace attn
