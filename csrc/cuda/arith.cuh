// Device arithmetic rounded exactly as the CPU kernels round: each product and sum on its own
// (the _rn intrinsics are never contracted into a fused multiply-add, whatever nvcc's --fmad),
// and the CPU's even/odd column sum (kernels/lanes.h, gather_axpy).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace darnax::cuda {

__device__ __forceinline__ float add(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ double add(double a, double b) { return __dadd_rn(a, b); }
__device__ __forceinline__ float mul(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double mul(double a, double b) { return __dmul_rn(a, b); }

// start + sum over entries p in [p0, p1) of values[p] * x_row[idx[p]], in T, in the order of
// gather_axpy: even positions of the range summed onto start, odd ones onto 0, each in range
// order, the two added at the end.
template <typename T>
__device__ __forceinline__ T column_sum(const T* x_row, const T* values, const int32_t* idx, int64_t p0,
                                        int64_t p1, T start) {
  T even = start, odd = T(0);
  int64_t p = p0;
  for (; p + 2 <= p1; p += 2) {
    even = add(even, mul(values[p], x_row[idx[p]]));
    odd = add(odd, mul(values[p + 1], x_row[idx[p + 1]]));
  }
  if (p < p1) even = add(even, mul(values[p], x_row[idx[p]]));
  return add(even, odd);
}

// Blocks of `threads` for `n` items, one item per thread.
inline unsigned blocks_for(int64_t n, int threads) {
  return static_cast<unsigned>((n + threads - 1) / threads);
}

}  // namespace darnax::cuda
