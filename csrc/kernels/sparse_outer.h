// The plasticity update of a sparse weight: out[p] = sum_b x[b, i_p] * e[b, k_p] on the pattern.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/lanes.h"
#include "kernels/parallel.h"
#include "kernels/pattern.h"
#include "kernels/sparse_matmul.h"

namespace darnax {
inline namespace DARNAX_ISA {

// x: (B, d), e: (B, K) row-major; w: by-column orientation of a (d, K) pattern;
// out: (nnz,) in column order. Cost O(B * (d + K + nnz)), never O(B * d * K).
template <typename T>
void sparse_outer(const T* x, const T* e, int64_t batch, const Compressed& w, T* out) {
  const int64_t d = w.n_inner, K = w.n_outer, blocks = lane_blocks(batch);
  const Scratch<T> xp = pack_lanes<T>(x, batch, d), ep = pack_lanes<T>(e, batch, K);
  parallel_for(K, column_cost(w, batch), kMinWorkPerThread, [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; ++k) {
      if (blocks == 1) {  // the common case (B <= 16): e's lanes stay in registers for the column
        const LaneBlock<T> ek(ep.data() + k * kLanes);
        int64_t p = w.ptr[k];
        for (; p + 8 <= w.ptr[k + 1]; p += 8) {
          const T* xi[8];
          for (int e = 0; e < 8; ++e) xi[e] = xp.data() + static_cast<int64_t>(w.idx[p + e]) * kLanes;
          lane_dot8(ek, xi, out + p);
        }
        for (; p < w.ptr[k + 1]; ++p)
          out[p] = T(0) + lane_dot(ek, xp.data() + static_cast<int64_t>(w.idx[p]) * kLanes);
        continue;
      }
      for (int64_t p = w.ptr[k]; p < w.ptr[k + 1]; ++p) {
        T acc = T(0);
        for (int64_t blk = 0; blk < blocks; ++blk)
          acc += lane_dot(LaneBlock<T>(ep.data() + (blk * K + k) * kLanes),
                          xp.data() + (blk * d + w.idx[p]) * kLanes);
        out[p] = acc;
      }
    }
  });
}

}  // namespace DARNAX_ISA
}  // namespace darnax
