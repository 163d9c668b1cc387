// Asynchronous sweeps of a layer of +-1 units with dense couplings J (N x N, row-major, the
// diagonal holding the self couplings): the maths of async_sign_sweeps (sign_dynamics.h) on the
// pattern of every off-diagonal entry, with the same results bit for bit, but without that
// pattern's N^2 indices. One sample at a time: a flip adds delta * J[i, :] to N fields, a
// contiguous row that vectorises; kLanes samples in lanes would move the fields of all of them
// whenever one flips, which costs more than it saves here (see bench/dense_sign_dynamics.py).
#pragma once

#include <algorithm>
#include <cstdint>

#include "kernels/lanes.h"
#include "kernels/parallel.h"
#include "kernels/sign_dynamics.h"

namespace darnax {
inline namespace DARNAX_ISA {

// field = h_ext + s0 @ (J without its diagonal) for samples [b0, b1) of a (B, n) batch, summed in T
// as sparse_matmul sums the off-diagonal pattern (gather_axpy): column k's rows i != k, in
// ascending order, alternate between two running sums (even positions starting from h_ext, odd
// ones from 0) that are added at the end; row i sits at position i in the columns after it and
// i - 1 in those before it. Rows run in the outer loop, so each row of J is read once, along
// memory, for all the samples. field: (b1 - b0, n) float64.
template <typename T>
void dense_start_fields(const T* h_ext, const T* couplings, const T* s0, int64_t b0, int64_t b1,
                        int64_t n, double* field) {
  const int64_t rows = (b1 - b0) * n;
  Scratch<T> even(rows), odd(rows);
  std::copy(h_ext + b0 * n, h_ext + b1 * n, even.data());
  std::fill(odd.data(), odd.data() + rows, T(0));
  for (int64_t i = 0; i < n; ++i) {
    const T* row = couplings + i * n;
    for (int64_t b = b0; b < b1; ++b) {
      const T x = s0[b * n + i];
      T* before = (i % 2 == 1 ? even.data() : odd.data()) + (b - b0) * n;  // columns k < i
      T* after = (i % 2 == 0 ? even.data() : odd.data()) + (b - b0) * n;   // columns k > i
      for (int64_t k = 0; k < i; ++k) before[k] += row[k] * x;
      for (int64_t k = i + 1; k < n; ++k) after[k] += row[k] * x;
    }
  }
  for (int64_t q = 0; q < rows; ++q) field[q] = static_cast<double>(even.data()[q] + odd.data()[q]);
}

// Adds delta * J[i, k] to field[k] for every k != i (row: J[i, :]).
template <typename T>
inline void push_dense_row(const T* row, int64_t i, int64_t n, double delta, double* field) {
  for (int64_t k = 0; k < i; ++k) field[k] += delta * static_cast<double>(row[k]);
  for (int64_t k = i + 1; k < n; ++k) field[k] += delta * static_cast<double>(row[k]);
}

// A batch of B samples, (B, n) row-major h_ext, s0 and outputs; couplings (n, n) row-major;
// order: (B, order_sweeps, n), or (order_sweeps, n) for every sample when order_shared, with
// order_sweeps 1 (one order for every sweep) or n_sweeps; flips: (B, n_sweeps); fields_out: the
// final total local fields h_ext + s @ J. Samples are split across threads.
template <typename T>
void dense_async_sign_sweeps(const T* h_ext, const T* couplings, const T* s0, const int32_t* order,
                             bool order_shared, int64_t order_sweeps, int64_t batch, int64_t n,
                             int64_t n_sweeps, T* s, int32_t* flips, T* fields_out) {
  Scratch<T> diag(n);
  for (int64_t i = 0; i < n; ++i) diag.data()[i] = couplings[i * (n + 1)];
  const int64_t stride = order_sweeps == 1 ? 0 : n;
  const double cost = static_cast<double>(n) * static_cast<double>(n) * static_cast<double>(1 + n_sweeps);
  parallel_for(batch, cost, kMinWorkPerThread, [&](int64_t b0, int64_t b1) {
    Scratch<double> field((b1 - b0) * n);
    dense_start_fields(h_ext, couplings, s0, b0, b1, n, field.data());
    for (int64_t b = b0; b < b1; ++b) {
      double* field_b = field.data() + (b - b0) * n;
      T* s_b = s + b * n;
      std::copy(s0 + b * n, s0 + (b + 1) * n, s_b);
      async_sweeps_with(diag.data(), order + (order_shared ? 0 : b * order_sweeps * n), stride, n,
                        n_sweeps, s_b, field_b, flips + b * n_sweeps,
                        [&](int64_t i, double delta, double* f) {
                          push_dense_row(couplings + i * n, i, n, delta, f);
                        });
      finish_sample(field_b, diag.data(), s_b, n, fields_out + b * n);
    }
  });
}

}  // namespace DARNAX_ISA
}  // namespace darnax
