// The plasticity update of a sparse weight: out[p] = sum_b x[b, i_p] * e[b, k_p] on the pattern.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>

#include "kernels/finite.h"
#include "kernels/lanes.h"
#include "kernels/outer_work.h"
#include "kernels/parallel.h"
#include "kernels/pattern.h"
#include "kernels/sparse_matmul.h"

namespace darnax {
inline namespace DARNAX_ISA {

// Lanes summed per traversal of the pattern: up to 4 lane blocks, so that an entry's packed x is
// 256 contiguous bytes in float (4 adjacent lines) and a 2000-row chunk of it 512 kB, in L2.
// One traversal per 16 lanes (the earlier layout) paid the index loads, a horizontal reduction
// and a read-modify-write of out per entry and lane block: 6.4x the time for 4x the batch.
constexpr int64_t kOuterChunk = 4 * kLanes;

// Bit j set when lane j of a lane block is nonzero (NaN included): vector compares, then one bit
// of each lane's result (a scalar compare per lane, as the compiler left the plain loop, cost
// 5-7% of sparse_outer at 2000x2000, B = 16).
template <typename T>
inline uint32_t nonzero_lanes(const T* lanes) {
  uint32_t mask = 0;
  for (int64_t q = 0; q < kVectors<T>; ++q) {
    const auto live = load_vec(lanes + q * kPerVector<T>) != Vec<T>{};  // all ones or zeros
    for (int64_t j = 0; j < kPerVector<T>; ++j)
      mask |= static_cast<uint32_t>(live[j] & 1) << (q * kPerVector<T> + j);
  }
  return mask;
}

// Per lane j: the chunk's Blocks lane blocks of e (in registers) times those of x at xi, summed
// in block order.
template <int Blocks, typename T>
inline LaneBlock<T> chunk_products(const LaneBlock<T>* e, const T* xi) {
  constexpr int64_t per = kPerVector<T>;
  LaneBlock<T> s;
  for (int64_t q = 0; q < kVectors<T>; ++q) s.v[q] = e[0].v[q] * load_vec(xi + q * per);
  for (int b = 1; b < Blocks; ++b)
    for (int64_t q = 0; q < kVectors<T>; ++q) s.v[q] += e[b].v[q] * load_vec(xi + b * kLanes + q * per);
  return s;
}

// One chunk's share of column k's entries [p0, p1) over all its lanes: d_p = lane_sum of
// chunk_products (xc: the chunk's packed x, Blocks * kLanes lanes per entry; ek: its lanes of
// e column k). Accumulate: out[p] += d_p, else out[p] = 0 + d_p.
template <bool Accumulate, int Blocks, typename T>
inline void outer_chunk_column(const T* xc, const T* ek, const int32_t* idx, int64_t p0, int64_t p1, T* out) {
  constexpr int64_t stride = Blocks * kLanes;
  LaneBlock<T> e[Blocks];  // hoisted: stores to out could alias ek, so loads of it would repeat
  for (int b = 0; b < Blocks; ++b) e[b] = LaneBlock<T>(ek + b * kLanes);
  int64_t p = p0;
  for (; p + 8 <= p1; p += 8) {
    LaneBlock<T> s[8];
    for (int j = 0; j < 8; ++j) s[j] = chunk_products<Blocks>(e, xc + static_cast<int64_t>(idx[p + j]) * stride);
    T sums[8];
    lane_sum8(s, sums);  // each 0 + d: equal to d once added to out[p] or to 0
    for (int j = 0; j < 8; ++j) out[p + j] = Accumulate ? out[p + j] + sums[j] : sums[j];
  }
  for (; p < p1; ++p) {
    const T sum = lane_sum(chunk_products<Blocks>(e, xc + static_cast<int64_t>(idx[p]) * stride));
    out[p] = Accumulate ? out[p] + sum : T(0) + sum;
  }
}

template <bool Accumulate, typename T>
inline void outer_chunk_column(int64_t blocks, const T* xc, const T* ek, const int32_t* idx, int64_t p0,
                               int64_t p1, T* out) {
  switch (blocks) {
    case 1: return outer_chunk_column<Accumulate, 1>(xc, ek, idx, p0, p1, out);
    case 2: return outer_chunk_column<Accumulate, 2>(xc, ek, idx, p0, p1, out);
    case 3: return outer_chunk_column<Accumulate, 3>(xc, ek, idx, p0, p1, out);
    default: return outer_chunk_column<Accumulate, 4>(xc, ek, idx, p0, p1, out);
  }
}

// The shortcuts for a chunk column whose error has at most two nonzero samples (x finite): the
// full sum's other products are signed zeros, so it equals the sum of those (at most two)
// products, bit for bit: a zero subtree of the summation adds nothing to a nonzero value, two
// nonzero values meet in one addition (commutative), and out[p] is never -0 (it starts as
// 0 + d). Reads x[b, i_p] from the sample's own row of x (x_rows: the chunk's first row, rows d
// apart; a short row stays in L1 where the packed chunk would not). Returns the number of
// nonzero samples, or -1 (nothing done) for three or more.
template <bool Accumulate, typename T>
inline int64_t outer_sparse_column(const T* x_rows, int64_t d, const T* ek, int64_t lanes, const int32_t* idx,
                                int64_t p0, int64_t p1, T* out) {
  uint32_t masks[kOuterChunk / kLanes];
  int64_t live = 0, b[2] = {0, 0};
  for (int64_t g = 0; g < lanes / kLanes; ++g) {
    masks[g] = nonzero_lanes(ek + g * kLanes);
    live += __builtin_popcount(masks[g]);
  }
  if (live > 2) return -1;  // the common case with dense errors: decided by a few vector compares
  for (int64_t g = 0, found = 0; g < lanes / kLanes; ++g)
    for (uint32_t m = masks[g]; m != 0; m &= m - 1) b[found++] = g * kLanes + __builtin_ctz(m);
  const auto put = [&](int64_t p, T sum) { out[p] = Accumulate ? out[p] + sum : T(0) + sum; };
  if (live == 0) {
    if (!Accumulate) std::fill(out + p0, out + p1, T(0));
  } else if (live == 1) {
    const T e0 = ek[b[0]], *x0 = x_rows + b[0] * d;
    for (int64_t p = p0; p < p1; ++p) put(p, x0[idx[p]] * e0);
  } else {
    const T e0 = ek[b[0]], e1 = ek[b[1]], *x0 = x_rows + b[0] * d, *x1 = x_rows + b[1] * d;
    for (int64_t p = p0; p < p1; ++p) put(p, x0[idx[p]] * e0 + x1[idx[p]] * e1);
  }
  return live;
}

// x: (B, d), e: (B, K) row-major; w: by-column orientation of a (d, K) pattern;
// out: (nnz,) in column order. Cost O(B * (d + K + nnz)), never O(B * d * K).
// The batch is cut into chunks of kOuterChunk lanes (the last one kLanes * lane_blocks wide);
// out[p] = (0 + d_p(chunk 0)) + d_p(chunk 1) + ..., each chunk's d_p summed per lane over its
// lane blocks, then across lanes by lane_sum's tree (see outer_chunk_column): the order depends
// only on B, never on the thread count. For B <= 16 it is the single lane block's tree.
// Columns whose error has at most two nonzero samples in a chunk take outer_sparse_column's
// shortcuts (plasticity errors are mostly zeros); OuterWork counts what they skip.
template <typename T>
void sparse_outer(const T* x, const T* e, int64_t batch, const Compressed& w, T* out) {
  const auto start = std::chrono::steady_clock::now();
  const int64_t d = w.n_inner, K = w.n_outer;
  const LaneLayout xl = lane_layout(batch, d, kOuterChunk);
  const int64_t chunks = (xl.padded + kOuterChunk - 1) / kOuterChunk;
  const bool skip_zeros = OuterWork::skipping.load(std::memory_order_relaxed) && all_finite(x, batch * d);
  if (chunks == 0) std::fill(out, out + w.nnz, T(0));
  parallel_for(K, column_cost(w, batch), kMinWorkPerThread, [&](int64_t k0, int64_t k1) {
    // Each thread packs its own x (see column_sums) and e columns, one chunk at a time into the
    // same buffers: they stay in L2 (packing all chunks first sent a B = 256 call's 2-4 MB out
    // to L3 and back: 6-9% of its time).
    const int64_t width = k1 - k0;
    Scratch<T> xc(d * std::min(xl.padded, kOuterChunk)), ec(width * std::min(xl.padded, kOuterChunk));
    int64_t computed = 0, skipped = 0;
    for (int64_t c = 0; c < chunks; ++c) {
      const int64_t lanes = xl.chunk_lanes(c), b0 = c * kOuterChunk, samples = std::min(lanes, batch - b0);
      const T* x_rows = x + b0 * d;
      pack_lanes_into(x_rows, samples, d, d, xc.data(), kOuterChunk);
      pack_lanes_into(e + b0 * K + k0, samples, width, K, ec.data(), kOuterChunk);
      for (int64_t k = k0; k < k1; ++k) {
        const T* ek = ec.data() + (k - k0) * lanes;
        const int64_t p0 = w.ptr[k], p1 = w.ptr[k + 1];
        const bool first = c == 0;
        const int64_t live = !skip_zeros ? -1
                             : first     ? outer_sparse_column<false>(x_rows, d, ek, lanes, w.idx, p0, p1, out)
                                         : outer_sparse_column<true>(x_rows, d, ek, lanes, w.idx, p0, p1, out);
        if (live >= 0) {
          computed += (p1 - p0) * live;
          skipped += (p1 - p0) * (samples - live);
          continue;
        }
        if (first)
          outer_chunk_column<false>(lanes / kLanes, xc.data(), ek, w.idx, p0, p1, out);
        else
          outer_chunk_column<true>(lanes / kLanes, xc.data(), ek, w.idx, p0, p1, out);
        computed += (p1 - p0) * samples;
      }
    }
    OuterWork::computed.fetch_add(computed, std::memory_order_relaxed);
    OuterWork::skipped.fetch_add(skipped, std::memory_order_relaxed);
  });
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start);
  OuterWork::calls.fetch_add(1, std::memory_order_relaxed);
  OuterWork::nanoseconds.fetch_add(ns.count(), std::memory_order_relaxed);
}

}  // namespace DARNAX_ISA
}  // namespace darnax
