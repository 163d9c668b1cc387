// Work counters of sparse_outer's zero-error shortcuts, shared by every instruction-set build
// (plain variables, outside the per-ISA namespaces): how many (entry, sample) products the calls
// computed and how many they skipped because the sample's error was zero, and their wall time.
// Each thread tallies a call's share in locals and adds it here once, so the atomics cost a few
// adds per call (beside >= 10 µs of work); `skipping` switches the shortcuts off for
// benchmarks (results are bit for bit the same either way).
#pragma once

#include <atomic>
#include <cstdint>

namespace darnax {

struct OuterWork {
  static inline std::atomic<int64_t> calls{0}, computed{0}, skipped{0}, nanoseconds{0};
  static inline std::atomic<bool> skipping{true};

  static void reset() {
    calls = 0;
    computed = 0;
    skipped = 0;
    nanoseconds = 0;
  }
};

}  // namespace darnax
