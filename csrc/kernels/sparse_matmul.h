// y = x @ W for W zero off a fixed pattern, W's values stored in column (CSC) order.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/lanes.h"
#include "kernels/parallel.h"
#include "kernels/pattern.h"

namespace darnax {
inline namespace DARNAX_ISA {

// Work per output column of a batched pattern traversal (multiply-adds), for thread splitting.
inline double column_cost(const Compressed& w, int64_t batch) {
  return static_cast<double>(lane_blocks(batch) * kLanes) *
         (1.0 + static_cast<double>(w.nnz) / static_cast<double>(std::max<int64_t>(w.n_outer, 1)));
}

// Computes init[b, k] + sum_i x[b, i] W[i, k] in type Acc for the columns k in [k0, k1), on the
// calling thread (init may be null: zeros), and hands it over four columns at a time:
// sink(blk, k, columns, acc) receives columns k..k+columns-1 of lane block blk as (columns,
// kLanes) values. x: (B, d) row-major, init: (B, K). Cost O(B (d + nnz + k1 - k0)). Each column's
// sum depends only on its entries (see gather_axpy), with the batch in vector lanes, so results
// do not depend on how columns are split. The caller packs its own copy of x: its random reads
// then hit its own core's caches (reading one shared copy from another core's cache made two
// threads slower than one). It packs one lane block at a time into one buffer, which stays in L2
// (all blocks first: 2 MB at B = 256, d = 2000).
template <typename Acc, typename T, typename Sink>
void column_sums_range(const T* x, int64_t batch, const T* values, const Compressed& w, const T* init,
                       int64_t k0, int64_t k1, Sink&& sink) {
  const int64_t d = w.n_inner, K = w.n_outer, blocks = lane_blocks(batch), width = k1 - k0;
  Scratch<Acc> xb(d * kLanes), start(init ? width * kLanes : 0);  // one lane block at a time
  Acc acc[4 * kLanes];
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int64_t b0 = blk * kLanes, lanes = std::min(kLanes, batch - b0);
    pack_lanes_into(x + b0 * d, lanes, d, d, xb.data());
    if (init) pack_lanes_into(init + b0 * K + k0, lanes, width, K, start.data());
    for (int64_t k = k0; k < k1; k += 4) {
      const int64_t columns = std::min<int64_t>(4, k1 - k);
      for (int64_t c = 0; c < columns; ++c) {
        const Acc* start_k = init ? start.data() + (k - k0 + c) * kLanes : nullptr;
        gather_axpy(values, w.idx, w.ptr[k + c], w.ptr[k + c + 1], xb.data(), start_k, acc + c * kLanes);
      }
      sink(blk, k, columns, static_cast<const Acc*>(acc));
    }
  }
}

// column_sums_range over all K columns, split across threads.
template <typename Acc, typename T, typename Sink>
void column_sums(const T* x, int64_t batch, const T* values, const Compressed& w, const T* init,
                 Sink&& sink) {
  parallel_for(w.n_outer, column_cost(w, batch), kMinWorkPerThread, [&](int64_t k0, int64_t k1) {
    column_sums_range<Acc>(x, batch, values, w, init, k0, k1, sink);
  });
}

// out = init + x @ W as a (B, K) row-major array of Out (init may be null: zeros); see
// column_sums.
template <typename Acc, typename T, typename Out>
void sparse_matmul_into(const T* x, int64_t batch, const T* values, const Compressed& w,
                        const T* init, Out* out) {
  const int64_t K = w.n_outer;
  column_sums<Acc>(x, batch, values, w, init,
                   [&](int64_t blk, int64_t k, int64_t columns, const Acc* acc) {
                     const int64_t b0 = blk * kLanes;
                     unpack_columns(acc, columns, std::min(kLanes, batch - b0), out + b0 * K + k, K);
                   });
}

// x: (B, d), values: (nnz,), w: by-column orientation of a (d, K) pattern, out: (B, K).
template <typename T>
void sparse_matmul(const T* x, int64_t batch, const T* values, const Compressed& w, T* out) {
  sparse_matmul_into<T>(x, batch, values, w, static_cast<const T*>(nullptr), out);
}

}  // namespace DARNAX_ISA
}  // namespace darnax
