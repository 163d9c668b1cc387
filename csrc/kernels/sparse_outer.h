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

// One lane block's share of column k's entries [p0, p1): d_p = sum over the block's lanes j of
// x[j, i_p] e[j, k] by lane_dot's halving tree (xb: the block's packed x, ek: its lanes of e
// column k). Accumulate: out[p] += d_p, else out[p] = 0 + d_p. A plasticity error e is mostly
// zeros: when x is finite (`skip_zeros`), a column whose e has no nonzero lane adds nothing and
// one with a single nonzero lane j adds x[j, i_p] e[j, k] alone, read from the sample's own row
// of x (x_rows: the block's first row, rows d apart; a short row stays in L1 where the packed
// block would not); both equal the full lane sum bit for bit, since every other product is a
// signed zero and out[p] is never -0 (it starts as 0 + d).
template <bool Accumulate, typename T>
inline void outer_block_column(const T* xb, const T* x_rows, int64_t d, const T* ek,
                               const int32_t* idx, int64_t p0, int64_t p1, bool skip_zeros,
                               T* out) {
  const auto put = [&](int64_t p, T sum) { out[p] = Accumulate ? out[p] + sum : T(0) + sum; };
  if (skip_zeros) {
    const uint32_t live = nonzero_lanes(ek);
    if (live == 0) {
      if (!Accumulate) std::fill(out + p0, out + p1, T(0));
      return;
    }
    if ((live & (live - 1)) == 0) {  // a single nonzero lane
      const int lane = __builtin_ctz(live);
      const T ej = ek[lane], *xj = x_rows + lane * d;
      for (int64_t p = p0; p < p1; ++p) put(p, xj[idx[p]] * ej);
      return;
    }
  }
  const LaneBlock<T> e_lanes(ek);  // e's lanes stay in registers for the column
  int64_t p = p0;
  for (; p + 8 <= p1; p += 8) {
    const T* xi[8];
    for (int j = 0; j < 8; ++j) xi[j] = xb + static_cast<int64_t>(idx[p + j]) * kLanes;
    T sums[8];
    lane_dot8(e_lanes, xi, sums);  // each 0 + d: equal to d once added to out[p] or to 0
    for (int j = 0; j < 8; ++j) put(p + j, sums[j]);
  }
  for (; p < p1; ++p) put(p, lane_dot(e_lanes, xb + static_cast<int64_t>(idx[p]) * kLanes));
}

// x: (B, d), e: (B, K) row-major; w: by-column orientation of a (d, K) pattern;
// out: (nnz,) in column order. Cost O(B * (d + K + nnz)), never O(B * d * K).
// out[p] = (0 + d_p(block 0)) + d_p(block 1) + ...: the lane blocks' sums (outer_block_column)
// added in block order, so a block costs what its nonzero lanes of e cost (a last block of a
// few samples, or of mostly-zero errors, takes the short paths).
template <typename T>
void sparse_outer(const T* x, const T* e, int64_t batch, const Compressed& w, T* out) {
  const int64_t d = w.n_inner, K = w.n_outer, blocks = lane_blocks(batch);
  const bool skip_zeros = all_finite(x, batch * d);
  if (blocks == 0) std::fill(out, out + w.nnz, T(0));
  parallel_for(K, column_cost(w, batch), kMinWorkPerThread, [&](int64_t k0, int64_t k1) {
    const int64_t width = k1 - k0;  // each thread packs its own x (see column_sums) and e columns
    const Scratch<T> xp = pack_lanes<T>(x, batch, d), ep = pack_lanes<T>(e + k0, batch, width, K);
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const T *xb = xp.data() + blk * d * kLanes, *x_rows = x + blk * kLanes * d;
      for (int64_t k = k0; k < k1; ++k) {
        const T* ek = ep.data() + (blk * width + k - k0) * kLanes;
        const int64_t p0 = w.ptr[k], p1 = w.ptr[k + 1];
        if (blk == 0)
          outer_block_column<false>(xb, x_rows, d, ek, w.idx, p0, p1, skip_zeros, out);
        else
          outer_block_column<true>(xb, x_rows, d, ek, w.idx, p0, p1, skip_zeros, out);
      }
    }
  });
}

}  // namespace DARNAX_ISA
}  // namespace darnax
