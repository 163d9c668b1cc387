// The plasticity update of a sparse weight: out[p] = sum_b x[b, i_p] * e[b, k_p] on the pattern.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/pattern.h"
#include "kernels/sparse_matmul.h"

namespace darnax {

// x: (B, d), e: (B, K) row-major; w: by-column orientation of a (d, K) pattern;
// out: (nnz,) in column order. Cost O(B * (d + K + nnz)), never O(B * d * K).
template <typename T>
void sparse_outer(const T* x, const T* e, int64_t batch, const Compressed& w, T* out) {
  const int64_t d = w.n_inner, K = w.n_outer;
  std::vector<T> x_t(static_cast<size_t>(d * batch)), e_t(static_cast<size_t>(K * batch));
  transpose(x, batch, d, x_t.data());
  transpose(e, batch, K, e_t.data());
  for (int64_t k = 0; k < K; ++k) {
    const T* ek = e_t.data() + k * batch;
    for (int64_t p = w.ptr[k]; p < w.ptr[k + 1]; ++p) {
      const T* xi = x_t.data() + static_cast<int64_t>(w.idx[p]) * batch;
      T acc = T(0);
      for (int64_t b = 0; b < batch; ++b) acc += xi[b] * ek[b];
      out[p] = acc;
    }
  }
}

}  // namespace darnax
