// Process-wide allocator settings for programs that re-quantize whole models.
#pragma once

#include <cstddef>

namespace attn {

// Every compression step allocates new weight buffers (hundreds of MB for a
// BERT-base-sized model) and frees the previous step's. By default glibc hands
// freed memory back to the kernel (heap trimming, and a private mapping per
// buffer above its mmap threshold), so each new buffer pays a page fault and a
// zeroed page per 4 KiB: measured here, more than half of re-quantizing all of
// BERT-base's Linear weights (540 ms → 250 ms without it, BM_WorkspaceStepBertBase/2).
// This keeps up to 2 GiB of freed memory in the heap for reuse and serves every
// buffer from it, whatever its size and whichever thread allocates it (one heap:
// glibc's per-thread arenas would map buffers over 64 MiB afresh). Call once,
// first thing in main(), before any thread starts; the cost is a resident size
// that stays at its peak (up to those 2 GiB more) after a large step.
void keepFreedMemoryForReuse();

// With keepFreedMemoryForReuse: touches `bytes` of new heap memory once and frees
// it, so the buffers of the next steps come from pages the process already has.
// On this project's VM a first touch costs ~10 µs per 4 KiB page (the host maps
// it), ~1 s for the ~400 MB a BERT-base-sized step allocates: the explorer calls
// this on a background thread after loading a model, instead of the first two
// control changes paying it. Keep `bytes` well below the 2 GiB the heap keeps.
void prefaultHeap(size_t bytes);

}  // namespace attn
