// The CUDA kernels of darnax's four pattern ops, as plain launch functions: device pointers,
// sizes and a stream in, a cudaError_t out. No XLA or nanobind types, so they can be driven and
// tested alone; the FFI handlers (ffi/cuda_*.cc) only validate and call them.
//
// Each kernel mirrors the summation order of its CPU twin (kernels/*.h), so results are equal
// bit for bit (see each function); arithmetic uses the _rn intrinsics, never a fused
// multiply-add, as the CPU build compiles with -ffp-contract=off.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace darnax::cuda {

// One orientation of a pattern in device memory (see darnax::Compressed).
struct DeviceCompressed {
  const int32_t* ptr = nullptr;  // (n_outer + 1,)
  const int32_t* idx = nullptr;  // (nnz,)
  int64_t n_outer = 0, n_inner = 0, nnz = 0;
};

// A square layer's pattern in device memory: both orientations and csr_pos (see darnax::Pattern).
struct DevicePattern {
  DeviceCompressed by_col, by_row;
  const int32_t* csr_pos = nullptr;
};

// out (B, K) = x (B, d) @ W. Bitwise equal to kernels/sparse_matmul.h: each out[b, k] is the CPU's
// two running sums (even and odd positions of column k's entries, in order) added at the end.
template <typename T>
cudaError_t sparse_matmul(const T* x, int64_t batch, const T* values, const DeviceCompressed& w, T* out,
                          cudaStream_t stream);

// out (nnz,) with out[p] = sum_b x[b, i_p] e[b, k_p]. Bitwise equal to kernels/sparse_outer.h:
// the batch in chunks of 64 samples, per lane of 16 the chunk's products in block order, the
// 16 lanes reduced by the CPU's fixed halving tree, chunks added in order after 0.
template <typename T>
cudaError_t sparse_outer(const T* x, const T* e, int64_t batch, const DeviceCompressed& w, T* out,
                         cudaStream_t stream);

// Sets bad[0] = 1 when some row of order (rows, n) is not a permutation of 0..n-1 (bad[0] must
// be 0 on entry). scratch: check_orders_scratch(rows, n) bytes of device memory (none for rows
// whose bitmap fits in shared memory, n <= 393,216).
size_t check_orders_scratch(int64_t rows, int64_t n);
cudaError_t check_orders(const int32_t* order, int64_t rows, int64_t n, uint32_t* scratch, int32_t* bad,
                         cudaStream_t stream);

// The sign dynamics' buffers: as the CPU's sync_sign_steps_batch / async_sign_sweeps_batch
// (kernels/sign_batch.h), plus device scratch: field (B, N) float64, delta (B, N) float64 (sync
// only; may be null for async).
template <typename T>
struct LayerBuffers {
  const T *h_ext, *values, *diag, *s0;
  int64_t batch;
  T* s;
  int32_t* flips;
  T* fields;
  double *field, *delta;
};

// Synchronous steps, one thread block per sample. Bitwise equal to the CPU: the initial field
// is h_ext + s0 @ W summed in T as sparse_matmul sums, then float64; each step decides every
// unit from the previous step's fields, then adds delta_j W[j, k] to field k in ascending j
// (the CPU's push order), here by walking column k.
template <typename T>
cudaError_t sync_sign_steps(const LayerBuffers<T>& buf, const DevicePattern& pat, int64_t n_steps,
                            cudaStream_t stream);

// Asynchronous sweeps, one warp per sample (samples in parallel), units in the sample's visiting
// order; a flip's row is pushed by the warp's lanes, one field each, before the next unit
// decides. Bitwise equal to the CPU (same float64 operations in the same order per field).
// order: (B or 1, order_sweeps, N) as sign_batch.h documents.
template <typename T>
cudaError_t async_sign_sweeps(const LayerBuffers<T>& buf, const DevicePattern& pat, const int32_t* order,
                              bool order_shared, int64_t order_sweeps, int64_t n_sweeps, cudaStream_t stream);

}  // namespace darnax::cuda
