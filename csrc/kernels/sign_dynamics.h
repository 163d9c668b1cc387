// Zero-temperature dynamics of a square layer of +-1 units, J = W (on the pattern) + diag(d):
// unit i takes s_i = +1 if h_ext_i + diag_i * s_i + sum_j s_j W_ji >= 0 else -1.
// Local fields start as h_ext + s0 @ W summed in T (as sparse_matmul does), then are kept in
// double precision and updated incrementally on each flip. One sample at a time; see
// sign_lanes.h for kLanes samples at once.
#pragma once

#include <algorithm>
#include <cstdint>

#include "kernels/lanes.h"
#include "kernels/parallel.h"
#include "kernels/pattern.h"

namespace darnax {
inline namespace DARNAX_ISA {

// The couplings in row (CSR) order, so that a flip reads its row contiguously. Rows are split
// across threads: one random read per entry (10 M of them at 100,000 units, fan-in 100).
template <typename T>
Scratch<T> values_by_row(const T* values, const Pattern& pat) {
  const Compressed& rows = pat.by_row;
  Scratch<T> out(rows.nnz);
  const double per_row = static_cast<double>(rows.nnz) / static_cast<double>(std::max<int64_t>(rows.n_outer, 1));
  parallel_for(rows.n_outer, per_row, kMinWorkPerThread, [&](int64_t r0, int64_t r1) {
    for (int64_t q = rows.ptr[r0]; q < rows.ptr[r1]; ++q) out.data()[q] = values[pat.csr_pos[q]];
  });
  return out;
}

// Adds delta * W[j, :] to the fields: O(out-degree of j). row_values: values_by_row().
template <typename T>
inline void push_flip(const Pattern& pat, const T* row_values, int64_t j, double delta,
                      double* field) {
  for (int64_t q = pat.by_row.ptr[j]; q < pat.by_row.ptr[j + 1]; ++q)
    field[pat.by_row.idx[q]] += delta * static_cast<double>(row_values[q]);
}

template <typename T>
inline T sign_with_self(double field_i, T diag_i, T s_i) {
  return field_i + static_cast<double>(diag_i) * static_cast<double>(s_i) >= 0.0 ? T(1) : T(-1);
}

// One sample, asynchronous: up to n_sweeps sweeps (a sweep without flips ends the call early),
// each visiting the n units in `order`; each unit sees the current states of all units, itself
// included (through diag). `s` holds the initial states on entry, `field` = h_ext + s @ W;
// push(i, delta, field) adds delta * W[i, :] to the fields. flips: (n_sweeps,).
// `order` holds one permutation per sweep, `order_stride` apart (0: the same for every sweep).
template <typename T, typename Push>
void async_sweeps_with(const T* diag, const int32_t* order, int64_t order_stride, int64_t n,
                       int64_t n_sweeps, T* s, double* field, int32_t* flips, Push&& push) {
  for (int64_t t = 0; t < n_sweeps; ++t) {
    const int32_t* visit = order + t * order_stride;
    int32_t count = 0;
    for (int64_t u = 0; u < n; ++u) {
      const int64_t i = visit[u];
      const T next = sign_with_self(field[i], diag[i], s[i]);
      if (next != s[i]) {
        push(i, static_cast<double>(next) - static_cast<double>(s[i]), field);
        s[i] = next;
        ++count;
      }
    }
    flips[t] = count;
    if (count == 0) {  // a fixed point: every later sweep would change nothing
      for (int64_t r = t + 1; r < n_sweeps; ++r) flips[r] = 0;
      return;
    }
  }
}

// async_sweeps_with on a sparse layer: W on `pat`, row_values: values_by_row().
template <typename T>
void async_sign_sweeps(const T* row_values, const Pattern& pat, const T* diag, const int32_t* order,
                       int64_t order_stride, int64_t n_sweeps, T* s, double* field, int32_t* flips) {
  async_sweeps_with(diag, order, order_stride, pat.by_col.n_outer, n_sweeps, s, field, flips,
                    [&](int64_t i, double delta, double* f) { push_flip(pat, row_values, i, delta, f); });
}

// One sample, synchronous: up to n_steps steps (a step without flips ends the call early), every
// unit decided from the previous step's states; the fields then move by the rows of the units
// that flipped. `s` and `field` as above. flips: (n_steps,).
template <typename T>
void sync_sign_steps(const T* row_values, const Pattern& pat, const T* diag, int64_t n_steps, T* s,
                     double* field, int32_t* flips) {
  const int64_t n = pat.by_col.n_outer;
  Scratch<T> next_buf(n);
  Scratch<int32_t> flipped_buf(n);
  T* next = next_buf.data();
  int32_t* flipped = flipped_buf.data();
  for (int64_t t = 0; t < n_steps; ++t) {
    for (int64_t i = 0; i < n; ++i)  // decide every unit before any field moves (vectorised)
      next[i] = sign_with_self(field[i], diag[i], s[i]);
    int64_t count = 0;
    for (int64_t i = 0; i < n; ++i) {  // branch-free compaction of the units that flip
      flipped[count] = static_cast<int32_t>(i);
      count += next[i] != s[i];
    }
    for (int64_t c = 0; c < count; ++c) {
      const int64_t j = flipped[c];
      push_flip(pat, row_values, j, static_cast<double>(next[j]) - static_cast<double>(s[j]), field);
      s[j] = next[j];
    }
    flips[t] = static_cast<int32_t>(count);
    if (count == 0) {  // a fixed point: every later step would change nothing
      for (int64_t r = t + 1; r < n_steps; ++r) flips[r] = 0;
      return;
    }
  }
}

// The one-sample epilogue: fields_out = field + diag * s, the total local field of the final
// states (as unpack_lane_block computes it for a lane).
template <typename T>
void finish_sample(const double* field, const T* diag, const T* s, int64_t n, T* fields_out) {
  for (int64_t i = 0; i < n; ++i)
    fields_out[i] =
        static_cast<T>(field[i] + static_cast<double>(diag[i]) * static_cast<double>(s[i]));
}

// Per-sample work estimate for splitting a batch across threads.
inline double layer_cost(const Pattern& pat, int64_t n_iter) {
  return static_cast<double>(pat.by_col.nnz + pat.by_col.n_outer) * static_cast<double>(n_iter);
}

}  // namespace DARNAX_ISA
}  // namespace darnax
