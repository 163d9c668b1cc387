// Test-only fault injection: makes chosen scratch allocations fail for real, so that tests can
// check that an allocation failure anywhere (the calling thread or a pool worker) becomes an
// error, never std::terminate. Armed only through darnax._ext.testing_fail_allocations.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace darnax {

struct FaultInjection {
  // Scratch allocations left to fail (0: none, the normal state).
  static inline std::atomic<int64_t> remaining{0};
  // Fail only allocations made on pool worker threads.
  static inline std::atomic<bool> workers_only{false};
  // Whether the calling thread is a pool worker.
  static inline thread_local bool on_worker = false;

  // The size to request for `bytes`: unchanged unless armed, else one no allocator can serve.
  static size_t request(size_t bytes) {
    if (remaining.load(std::memory_order_relaxed) <= 0) return bytes;  // the only cost when off
    if (workers_only.load() && !on_worker) return bytes;
    if (remaining.fetch_sub(1) <= 0) return bytes;
    return bytes + (size_t{1} << 62);
  }
};

}  // namespace darnax
