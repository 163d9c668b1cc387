// Freed scratch buffers of the calling thread, kept for its next calls: a large allocation would
// otherwise be a fresh mmap whose pages fault in, zeroed, on every call (measured: 80 µs for
// two 256 kB buffers, more than the kernel that uses them). Only buffers up to kMaxKept bytes
// are kept: bigger ones serve calls whose work dwarfs their page faults (a 100,000-unit
// network's 40 MB of row-ordered couplings), and kept on every thread that ran a kernel (XLA's,
// the caller's, the pool's) they held 230 MB of a 100,000-unit job's memory.
// One cache per thread for every instruction-set build of the kernels: compiled on its own
// (scratch.cc), outside the per-ISA namespaces.
#pragma once

#include <cstddef>
#include <vector>

namespace darnax {

class ScratchCache {
 public:
  static constexpr size_t kAlign = 64;                 // a cache line
  static constexpr size_t kKeep = 8;                   // buffers kept, at most
  static constexpr size_t kMaxKept = size_t{4} << 20;  // bytes of the largest buffer kept

  static ScratchCache& local();

  // A kAlign-aligned buffer of at least `bytes` (the smallest kept one that fits, else a new one;
  // `bytes` becomes its size). Throws std::bad_alloc.
  void* take(size_t& bytes);
  // Hands back a buffer from take(): kept if small enough, else freed.
  void give(void* data, size_t bytes);

  // The buffers kept now, their bytes in all and those of the largest (for tests).
  size_t kept() const { return free_.size(); }
  size_t kept_bytes() const;
  size_t largest_kept() const;

  ScratchCache() = default;
  ScratchCache(const ScratchCache&) = delete;
  ScratchCache& operator=(const ScratchCache&) = delete;
  ~ScratchCache();

 private:
  struct Buffer {
    void* data;
    size_t bytes;
  };
  static void release(const Buffer& b);
  std::vector<Buffer> free_;
};

}  // namespace darnax
