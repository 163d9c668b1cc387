// Zero-temperature dynamics of a square layer of +-1 units, J = W (on the pattern) + diag(d):
// unit i takes s_i = +1 if h_ext_i + diag_i * s_i + sum_j s_j W_ji >= 0 else -1.
// Local fields are kept in double precision and updated incrementally on each flip.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/pattern.h"

namespace darnax {

// field[k] = h_ext[k] + sum_j s[j] W[j, k]: O(nnz) from the by-column orientation.
template <typename T>
void initial_field(const T* h_ext, const T* values, const Compressed& by_col, const T* s,
                   double* field) {
  for (int64_t k = 0; k < by_col.n_outer; ++k) {
    double acc = static_cast<double>(h_ext[k]);
    for (int64_t p = by_col.ptr[k]; p < by_col.ptr[k + 1]; ++p)
      acc += static_cast<double>(s[by_col.idx[p]]) * static_cast<double>(values[p]);
    field[k] = acc;
  }
}

// Adds delta * W[j, :] to the fields: O(out-degree of j).
template <typename T>
inline void push_flip(const Pattern& pat, const T* values, int64_t j, double delta, double* field) {
  for (int64_t q = pat.by_row.ptr[j]; q < pat.by_row.ptr[j + 1]; ++q)
    field[pat.by_row.idx[q]] += delta * static_cast<double>(values[pat.csr_pos[q]]);
}

template <typename T>
inline T sign_with_self(double field_i, T diag_i, T s_i) {
  return field_i + static_cast<double>(diag_i) * static_cast<double>(s_i) >= 0.0 ? T(1) : T(-1);
}

// One sample, asynchronous: n_sweeps sweeps, each visiting the N units in `order`; each unit
// sees the current states of all units, itself included (through diag). flips: (n_sweeps,).
template <typename T>
void async_sign_sweeps(const T* h_ext, const T* values, const Pattern& pat, const T* diag,
                       const T* s0, const int32_t* order, int64_t n_sweeps, T* s,
                       int32_t* flips, std::vector<double>& field) {
  const int64_t n = pat.by_col.n_outer;
  field.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) s[i] = s0[i];
  initial_field(h_ext, values, pat.by_col, s, field.data());
  for (int64_t t = 0; t < n_sweeps; ++t) {
    int32_t count = 0;
    for (int64_t u = 0; u < n; ++u) {
      const int64_t i = order[u];
      const T next = sign_with_self(field[i], diag[i], s[i]);
      if (next != s[i]) {
        push_flip(pat, values, i, static_cast<double>(next) - static_cast<double>(s[i]),
                  field.data());
        s[i] = next;
        ++count;
      }
    }
    flips[t] = count;
  }
}

// One sample, synchronous: n_steps steps, every unit decided from the previous step's states;
// the fields then move by the rows of the units that flipped. flips: (n_steps,).
// `next` and `flipped` are scratch buffers, resized here.
template <typename T>
void sync_sign_steps(const T* h_ext, const T* values, const Pattern& pat, const T* diag,
                     const T* s0, int64_t n_steps, T* s, int32_t* flips,
                     std::vector<double>& field, std::vector<T>& next,
                     std::vector<int32_t>& flipped) {
  const int64_t n = pat.by_col.n_outer;
  field.resize(static_cast<size_t>(n));
  next.resize(static_cast<size_t>(n));
  flipped.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) s[i] = s0[i];
  initial_field(h_ext, values, pat.by_col, s, field.data());
  for (int64_t t = 0; t < n_steps; ++t) {
    int64_t count = 0;
    for (int64_t i = 0; i < n; ++i) {  // decide every unit before any field moves
      next[i] = sign_with_self(field[i], diag[i], s[i]);
      if (next[i] != s[i]) flipped[count++] = static_cast<int32_t>(i);
    }
    for (int64_t c = 0; c < count; ++c) {
      const int64_t j = flipped[c];
      push_flip(pat, values, j, static_cast<double>(next[j]) - static_cast<double>(s[j]),
                field.data());
      s[j] = next[j];
    }
    flips[t] = static_cast<int32_t>(count);
  }
}

}  // namespace darnax
