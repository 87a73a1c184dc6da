#include "core/io/atomic_file.h"

#include <stdlib.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <random>
#include <string>
#include <system_error>

namespace attn {

namespace {
// fn()'s status, with an exception (out of memory, …) turned into an error so
// the caller still removes its temporary output.
template <class Fn>
Status guarded(Fn&& fn) {
  try {
    return fn();
  } catch (const std::exception& e) {
    return makeError(std::string("the write failed: ") + e.what());
  }
}

std::filesystem::path tempPathFor(const std::filesystem::path& target) {
  thread_local std::random_device rd;
  const auto dir = target.has_parent_path() ? target.parent_path() : std::filesystem::path(".");
  return dir / ("." + target.filename().string() + ".tmp-" + std::to_string(rd()));
}
}  // namespace

Status writePathAtomically(const std::filesystem::path& target,
                           const std::function<Status(const std::filesystem::path&)>& write) {
  const auto tmp = tempPathFor(target);
  Status st = guarded([&] { return write(tmp); });
  std::error_code ec;
  if (!st.ok()) {
    std::filesystem::remove(tmp, ec);
    return st;
  }
  std::filesystem::rename(tmp, target, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    return makeError("cannot write '" + target.string() + "': " + ec.message());
  }
  return Ok{};
}

Status writeFileAtomically(const std::filesystem::path& target,
                           const std::function<Status(std::FILE*)>& write) {
  return writePathAtomically(target, [&](const std::filesystem::path& tmp) -> Status {
    std::FILE* f = std::fopen(tmp.c_str(), "wbx");  // never truncate another writer's file
    if (f == nullptr)
      return makeError("cannot write '" + target.string() + "': " + std::strerror(errno));
    Status st = guarded([&] { return write(f); });
    const bool flushed = std::fflush(f) == 0 && ::fsync(fileno(f)) == 0;
    const bool closed = std::fclose(f) == 0;
    if (!st.ok()) return st;
    if (!flushed || !closed)
      return makeError("cannot write '" + target.string() + "': " + std::strerror(errno));
    return Ok{};
  });
}

void startWriteback(std::FILE* f) {
  if (std::fflush(f) != 0) return;  // the final flush reports the error
#if defined(__linux__)
  ::sync_file_range(fileno(f), 0, 0, SYNC_FILE_RANGE_WRITE);
#endif
}

void startWriteback(const std::filesystem::path& path) {
#if defined(__linux__)
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return;  // the final fsync reports what is wrong
  ::sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
  ::close(fd);
#else
  (void)path;
#endif
}

Status syncFile(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return makeError("cannot open '" + path.string() + "': " + std::strerror(errno));
  const bool ok = ::fsync(fd) == 0;
  const int err = errno;
  ::close(fd);
  if (!ok) return makeError("cannot flush '" + path.string() + "': " + std::strerror(err));
  return Ok{};
}

Status writeDirectoryAtomically(const std::filesystem::path& dir,
                                const std::function<Status(const std::filesystem::path&)>& fill) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_empty(dir, ec))
    return makeError("'" + dir.string() + "' exists and is not empty");
  const fs::path parent = dir.has_parent_path() ? dir.parent_path() : fs::path(".");
  fs::create_directories(parent, ec);
  std::string tmpl = (parent / (dir.filename().string() + ".partial-XXXXXX")).string();
  if (mkdtemp(tmpl.data()) == nullptr)
    return makeError("cannot create a folder beside '" + dir.string() + "'");
  const fs::path tmp(tmpl);
  if (Status st = guarded([&] { return fill(tmp); }); !st) {
    fs::remove_all(tmp, ec);
    return st;
  }
  fs::remove(dir, ec);  // an empty target folder
  fs::rename(tmp, dir, ec);
  if (ec) {
    const std::string why = ec.message();
    fs::remove_all(tmp, ec);
    return makeError("cannot rename the output to '" + dir.string() + "': " + why);
  }
  return Ok{};
}

}  // namespace attn
