// y = x @ W for W zero off a fixed pattern, W's values stored in column (CSC) order.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/pattern.h"

namespace darnax {

// Transposes a (rows, cols) row-major block into (cols, rows).
template <typename T>
void transpose(const T* in, int64_t rows, int64_t cols, T* out) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) out[c * rows + r] = in[r * cols + c];
}

// x: (B, d) row-major, values: (nnz,), w: by-column orientation of a (d, K) pattern,
// out: (B, K). Cost O(B * (d + nnz + K)). Each output column is accumulated over its
// entries in pattern order, vectorised across the batch, so results do not depend on
// how the work is split.
template <typename T>
void sparse_matmul(const T* x, int64_t batch, const T* values, const Compressed& w, T* out) {
  const int64_t d = w.n_inner, K = w.n_outer;
  std::vector<T> x_t(static_cast<size_t>(d * batch));
  std::vector<T> acc(static_cast<size_t>(batch));
  transpose(x, batch, d, x_t.data());
  for (int64_t k = 0; k < K; ++k) {
    for (int64_t b = 0; b < batch; ++b) acc[b] = T(0);
    for (int64_t p = w.ptr[k]; p < w.ptr[k + 1]; ++p) {
      const T v = values[p];
      const T* xi = x_t.data() + static_cast<int64_t>(w.idx[p]) * batch;
      for (int64_t b = 0; b < batch; ++b) acc[b] += v * xi[b];
    }
    for (int64_t b = 0; b < batch; ++b) out[b * K + k] = acc[b];
  }
}

}  // namespace darnax
