// One instruction-set build of the kernels, as a table of plain function pointers.
#pragma once

#include <cstdint>

#include "kernels/pattern.h"

namespace darnax {

template <typename T>
struct KernelTable {
  // out (B, K) = x (B, d) @ W; see sparse_matmul.h.
  void (*sparse_matmul)(const T* x, int64_t batch, const T* values, const Compressed& w, T* out);
  // out (nnz,) = (x^T e) on the pattern; see sparse_outer.h.
  void (*sparse_outer)(const T* x, const T* e, int64_t batch, const Compressed& w, T* out);
  // see sign_batch.h: async_sign_sweeps_batch.
  void (*async_sign_sweeps)(const T* h_ext, const T* values, const Pattern& pat, const T* diag,
                            const T* s0, const int32_t* order, bool order_shared,
                            int64_t order_sweeps,
                            int64_t batch, int64_t n_sweeps, T* s, int32_t* flips, T* fields);
  // see dense_sign_dynamics.h: dense_async_sign_sweeps.
  void (*dense_async_sign_sweeps)(const T* h_ext, const T* couplings, const T* s0,
                                  const int32_t* order, bool order_shared, int64_t order_sweeps,
                                  int64_t batch, int64_t n, int64_t n_sweeps, T* s, int32_t* flips,
                                  T* fields);
  // see sign_batch.h: sync_sign_steps_batch.
  void (*sync_sign_steps)(const T* h_ext, const T* values, const Pattern& pat, const T* diag,
                          const T* s0, int64_t batch, int64_t n_steps, T* s, int32_t* flips,
                          T* fields);
  // see dense_outer.h: out (d, K) = x (B, d)^T @ e (B, K).
  void (*dense_outer)(const T* x, const T* e, int64_t batch, int64_t d, int64_t K, T* out);
  // see finite.h: whether all n entries are finite.
  bool (*all_finite)(const T* a, int64_t n);
};

// The table for the best instruction set this CPU supports (chosen once).
template <typename T>
const KernelTable<T>& kernels();

// The name of that instruction set ("baseline", "avx2").
const char* kernel_isa();

}  // namespace darnax
