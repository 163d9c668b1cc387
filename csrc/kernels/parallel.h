// A fork-join loop over contiguous chunks, on threads of known number (never XLA's pool).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <thread>
#include <vector>

namespace darnax {

// Minimum work (multiply-adds or field updates) worth a thread of its own.
constexpr double kMinWorkPerThread = 1e5;

// Threads per call: DARNAX_NUM_THREADS if set (>= 1), else the hardware concurrency.
inline int64_t num_threads() {
  static const int64_t n = [] {
    const char* env = std::getenv("DARNAX_NUM_THREADS");
    const long v = env ? std::strtol(env, nullptr, 10) : 0;
    if (v >= 1) return static_cast<int64_t>(v);
    return std::max<int64_t>(1, static_cast<int64_t>(std::thread::hardware_concurrency()));
  }();
  return n;
}

// Calls fn(begin, end) on disjoint chunks covering [0, n). Work is split only when each chunk
// gets at least `min_work` units (cost / n per item times the chunk length), so small calls stay
// on the calling thread. Each item is processed by exactly one call in a fixed order, so results
// never depend on the number of threads.
template <typename Fn>
void parallel_for(int64_t n, double cost_per_item, double min_work, Fn&& fn) {
  const double total = cost_per_item * static_cast<double>(n);
  const int64_t by_work = static_cast<int64_t>(total / std::max(min_work, 1.0));
  const int64_t chunks = std::max<int64_t>(1, std::min({num_threads(), n, by_work}));
  if (chunks == 1) {
    fn(int64_t{0}, n);
    return;
  }
  std::vector<std::thread> workers;
  workers.reserve(static_cast<size_t>(chunks - 1));
  for (int64_t c = 1; c < chunks; ++c)
    workers.emplace_back([&fn, c, n, chunks] { fn(c * n / chunks, (c + 1) * n / chunks); });
  fn(int64_t{0}, n / chunks);
  for (auto& w : workers) w.join();
}

}  // namespace darnax
