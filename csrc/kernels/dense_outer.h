// out = x^T e for dense x (B, d) and e (B, K), row-major: the plasticity update of a dense weight.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "kernels/finite.h"
#include "kernels/lanes.h"
#include "kernels/parallel.h"

namespace darnax {
inline namespace DARNAX_ISA {

// Output rows computed together: as many independent sums in flight, which hides the latency
// of each addition (2000 x 10 from 16 samples on one thread, side by side on a loaded machine:
// 40 µs one row at a time, 20 µs eight at a time).
constexpr int64_t kOuterRows = 8;

// Rows i .. i + R - 1 of x^T e from the used samples' rows of e (padded to `width`).
template <typename T, int64_t R>
inline void outer_rows(const T* x, const T* rows, const int64_t* used, int64_t n_used, int64_t d,
                       int64_t K, int64_t width, int64_t i, T* out) {
  constexpr int64_t W = kPerVector<T>;
  for (int64_t k = 0; k < width; k += W) {
    Vec<T> acc[R] = {};
    for (int64_t u = 0; u < n_used; ++u) {
      const Vec<T> v = load_vec(rows + u * width + k);
      const T* xb = x + used[u] * d + i;
      for (int64_t r = 0; r < R; ++r) acc[r] += xb[r] * v;
    }
    const size_t bytes = sizeof(T) * static_cast<size_t>(std::min(W, K - k));
    for (int64_t r = 0; r < R; ++r) std::memcpy(out + (i + r) * K + k, &acc[r], bytes);
  }
}

// Each output row i holds sum_b x[b, i] e[b, :], summed in order of b in vector registers (a
// vector of K columns at a time) and stored once. Samples whose row of e is all zero add
// nothing and are skipped (in training, those the perceptron rule found no mistake in), unless
// x holds a NaN or an infinity, which must reach the output as 0 * inf does. Rows of the
// output are split across threads: a result never depends on the thread count. XLA's dot took
// 39 µs for the seeds' readout (2000 x 10 from 16 samples), this 13 µs, both in the
// training program (bench/RESULTS.md, 28).
template <typename T>
void dense_outer(const T* x, const T* e, int64_t batch, int64_t d, int64_t K, T* out) {
  constexpr int64_t W = kPerVector<T>;
  const int64_t width = (K + W - 1) / W * W;  // e's rows, padded with zeros to whole vectors
  const bool skip = all_finite(x, batch * d);
  Scratch<T> rows(batch * width);
  Scratch<int64_t> used(batch);
  int64_t n_used = 0;
  for (int64_t b = 0; b < batch; ++b) {
    const T* row = e + b * K;
    if (skip && std::all_of(row, row + K, [](T v) { return v == T(0); })) continue;
    T* padded = rows.data() + n_used * width;
    std::copy(row, row + K, padded);
    std::fill(padded + K, padded + width, T(0));
    used.data()[n_used++] = b;
  }
  const double cost = static_cast<double>(std::max<int64_t>(n_used, 1) * width);
  parallel_for(d, cost, kMinWorkPerThread, [&](int64_t i0, int64_t i1) {
    int64_t i = i0;
    for (; i + kOuterRows <= i1; i += kOuterRows)
      outer_rows<T, kOuterRows>(x, rows.data(), used.data(), n_used, d, K, width, i, out);
    for (; i < i1; ++i) outer_rows<T, 1>(x, rows.data(), used.data(), n_used, d, K, width, i, out);
  });
}

}  // namespace DARNAX_ISA
}  // namespace darnax
