// The plasticity update of a sparse weight: out[p] = sum_b x[b, i_p] * e[b, k_p] on the pattern.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "kernels/lanes.h"
#include "kernels/parallel.h"
#include "kernels/pattern.h"
#include "kernels/sparse_matmul.h"

namespace darnax {
inline namespace DARNAX_ISA {

// True when every value is finite (exponent bits not all ones): one vectorisable pass.
template <typename T>
bool all_finite(const T* x, int64_t n) {
  using Bits = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  constexpr Bits kExponent = sizeof(T) == 4 ? Bits(0x7f800000u) : Bits(0x7ff0000000000000ull);
  Bits bad = 0;
  for (int64_t i = 0; i < n; ++i) {
    Bits b;
    std::memcpy(&b, x + i, sizeof(b));
    bad |= static_cast<Bits>((b & kExponent) == kExponent);
  }
  return bad == 0;
}

// Bit j set when lane j of a lane block is nonzero (a branch-free pass the compiler vectorises).
template <typename T>
inline uint32_t nonzero_lanes(const T* lanes) {
  uint32_t mask = 0;
  for (int64_t j = 0; j < kLanes; ++j) mask |= static_cast<uint32_t>(lanes[j] != T(0)) << j;
  return mask;
}

// x: (B, d), e: (B, K) row-major; w: by-column orientation of a (d, K) pattern;
// out: (nnz,) in column order. Cost O(B * (d + K + nnz)), never O(B * d * K).
// A plasticity error e is mostly zeros: for B <= kLanes and finite x, a column whose e has no
// nonzero sample is written as zeros and one with a single nonzero sample b as
// 0 + x[b, i] e[b, k]; both equal the full lane sum bit for bit (every other product is a
// signed zero, which leaves a sum unchanged).
template <typename T>
void sparse_outer(const T* x, const T* e, int64_t batch, const Compressed& w, T* out) {
  const int64_t d = w.n_inner, K = w.n_outer, blocks = lane_blocks(batch);
  const bool skip_zeros = blocks == 1 && all_finite(x, batch * d);
  parallel_for(K, column_cost(w, batch), kMinWorkPerThread, [&](int64_t k0, int64_t k1) {
    const int64_t width = k1 - k0;  // each thread packs its own x (see column_sums) and e columns
    const Scratch<T> xp = pack_lanes<T>(x, batch, d), ep = pack_lanes<T>(e + k0, batch, width, K);
    for (int64_t k = k0; k < k1; ++k) {
      const int64_t p0 = w.ptr[k], p1 = w.ptr[k + 1];
      const T* ek = ep.data() + (k - k0) * kLanes;  // lane block 0 of column k
      if (skip_zeros) {
        const uint32_t live = nonzero_lanes(ek);
        if (live == 0) {
          std::fill(out + p0, out + p1, T(0));
          continue;
        }
        if ((live & (live - 1)) == 0) {  // a single nonzero lane
          const int lane = __builtin_ctz(live);
          const T ej = ek[lane];
          for (int64_t p = p0; p < p1; ++p)
            out[p] = T(0) + xp.data()[static_cast<int64_t>(w.idx[p]) * kLanes + lane] * ej;
          continue;
        }
      }
      if (blocks == 1) {  // the common case (B <= 16): e's lanes stay in registers for the column
        const LaneBlock<T> e_lanes(ek);
        int64_t p = p0;
        for (; p + 8 <= p1; p += 8) {
          const T* xi[8];
          for (int j = 0; j < 8; ++j) xi[j] = xp.data() + static_cast<int64_t>(w.idx[p + j]) * kLanes;
          lane_dot8(e_lanes, xi, out + p);
        }
        for (; p < p1; ++p)
          out[p] = T(0) + lane_dot(e_lanes, xp.data() + static_cast<int64_t>(w.idx[p]) * kLanes);
        continue;
      }
      for (int64_t p = p0; p < p1; ++p) {
        T acc = T(0);
        for (int64_t blk = 0; blk < blocks; ++blk)
          acc += lane_dot(LaneBlock<T>(ep.data() + (blk * width + k - k0) * kLanes),
                          xp.data() + (blk * d + w.idx[p]) * kLanes);
        out[p] = acc;
      }
    }
  });
}

}  // namespace DARNAX_ISA
}  // namespace darnax
