#include "core/util/memory.h"

#include <cstdlib>  // defines __GLIBC__ (through <features.h>) for the test below

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace attn {

void keepFreedMemoryForReuse() {
#if defined(__GLIBC__)
  mallopt(M_MMAP_THRESHOLD, 32 << 20);  // glibc's largest threshold (64-bit): 32 MiB
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  // Larger buffers (the attention maps of a long input: 151 MB for BERT-base at
  // 512 tokens) from the heap too, not a mapping of their own that free() unmaps;
  // and one heap for every thread: a worker thread's own arena is made of 64 MiB
  // heaps, so it would still map anything larger afresh.
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_ARENA_MAX, 1);
#endif
}

void prefaultHeap(size_t bytes) {
  auto* p = static_cast<volatile char*>(std::malloc(bytes));
  if (p == nullptr) return;
  for (size_t i = 0; i < bytes; i += 4096) p[i] = 0;
  std::free(const_cast<char*>(p));
}

}  // namespace attn
