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
#endif
}

}  // namespace attn
