#include "core/util/memory.h"

#include <cstdint>
#include <cstdlib>  // defines __GLIBC__ (through <features.h>) for the test below
#include <system_error>
#include <thread>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace attn {

void keepFreedMemoryForReuse() {
#if defined(__GLIBC__)
  mallopt(M_MMAP_THRESHOLD, 32 << 20);  // glibc's largest threshold (64-bit): 32 MiB
  mallopt(M_TRIM_THRESHOLD, int(2047u << 20));  // an int: just under 2 GiB
  // Larger buffers (the attention maps of a long input: 151 MB for BERT-base at
  // 512 tokens) from the heap too, not a mapping of their own that free() unmaps;
  // and one heap for every thread: a worker thread's own arena is made of 64 MiB
  // heaps, so it would still map anything larger afresh.
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_ARENA_MAX, 1);
#endif
}

void prefaultHeap(size_t bytes) {
  auto* p = static_cast<char*>(std::malloc(bytes));
  if (p == nullptr) return;
#if defined(__linux__)
  // Transparent huge pages where the system allows them (a fault per 2 MiB, not
  // per 4 KiB: 768 MiB touched in 0.5–1.8 s here instead of 1.6–2.9 s), and both
  // halves touched at once (the host maps pages for two CPUs in parallel).
  const uintptr_t huge = uintptr_t(2) << 20;
  const uintptr_t first = (reinterpret_cast<uintptr_t>(p) + huge - 1) & ~(huge - 1);
  const uintptr_t last = (reinterpret_cast<uintptr_t>(p) + bytes) & ~(huge - 1);
  if (last > first) ::madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);
#endif
  auto touch = [p](size_t begin, size_t end) {
    for (size_t i = begin; i < end; i += 4096) static_cast<volatile char*>(p)[i] = 0;
  };
  const size_t half = bytes / 2 / 4096 * 4096;
  try {
    std::thread other([&] { touch(half, bytes); });
    touch(0, half);
    other.join();
  } catch (const std::system_error&) {  // no second thread: all on this one
    touch(0, bytes);
  }
  std::free(p);
}

}  // namespace attn
