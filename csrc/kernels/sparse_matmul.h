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

// out[b, k] = init[b, k] + sum_i x[b, i] W[i, k], accumulated in type Acc. x: (B, d) row-major,
// init and out: (B, K) row-major (init may be null: zeros). Cost O(B * (d + nnz + K)).
// Columns are split across threads; each column sums its entries in pattern order, with the
// batch in vector lanes, so results do not depend on the thread count.
template <typename Acc, typename T, typename Out>
void sparse_matmul_into(const T* x, int64_t batch, const T* values, const Compressed& w,
                        const T* init, Out* out) {
  const int64_t d = w.n_inner, K = w.n_outer, blocks = lane_blocks(batch);
  const Scratch<Acc> packed = pack_lanes<Acc>(x, batch, d);
  parallel_for(K, column_cost(w, batch), kMinWorkPerThread, [&](int64_t k0, int64_t k1) {
    Acc acc[kLanes];
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const int64_t b0 = blk * kLanes, lanes = std::min(kLanes, batch - b0);
      const Acc* xb = packed.data() + blk * d * kLanes;
      for (int64_t k = k0; k < k1; ++k) {
        for (int64_t j = 0; j < kLanes; ++j)
          acc[j] = (init && j < lanes) ? static_cast<Acc>(init[(b0 + j) * K + k]) : Acc(0);
        gather_axpy(values, w.idx, w.ptr[k], w.ptr[k + 1], xb, acc);
        for (int64_t j = 0; j < lanes; ++j) out[(b0 + j) * K + k] = static_cast<Out>(acc[j]);
      }
    }
  });
}

// x: (B, d), values: (nnz,), w: by-column orientation of a (d, K) pattern, out: (B, K).
template <typename T>
void sparse_matmul(const T* x, int64_t batch, const T* values, const Compressed& w, T* out) {
  sparse_matmul_into<T>(x, batch, values, w, static_cast<const T*>(nullptr), out);
}

}  // namespace DARNAX_ISA
}  // namespace darnax
