// Atomic writes: data goes to a temporary file in the target's folder, is
// flushed, then renamed over the target; on failure the temporary is removed
// and the target is untouched.
#pragma once

#include <cstdio>
#include <filesystem>
#include <functional>

#include "core/util/result.h"

namespace attn {

// write() fills the open temporary file; a failed Status aborts the whole write.
Status writeFileAtomically(const std::filesystem::path& target,
                           const std::function<Status(std::FILE*)>& write);

// For writers that need a path (HDF5): write(tempPath) creates the file there.
Status writePathAtomically(const std::filesystem::path& target,
                           const std::function<Status(const std::filesystem::path&)>& write);

// Hands what was written to f so far to the kernel and asks it to start writing
// it to disk now, without waiting (Linux sync_file_range; elsewhere only the
// fflush): a large file's final fsync then waits for less of it.
void startWriteback(std::FILE* f);
// The same for a file another library writes (HDF5): what it has handed to the
// kernel so far (e.g. after H5Fflush) starts going to disk.
void startWriteback(const std::filesystem::path& path);

// fsync of a closed file (for writers that manage the file themselves, like HDF5).
Status syncFile(const std::filesystem::path& path);

// A whole folder: fill(tempDir) writes the files into "<target>.partial-XXXXXX"
// beside the target, which is then renamed to the target. An existing non-empty
// target is refused; on failure the temporary folder is removed.
Status writeDirectoryAtomically(const std::filesystem::path& target,
                                const std::function<Status(const std::filesystem::path&)>& fill);

}  // namespace attn
