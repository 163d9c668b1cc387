// CUDA kernels of the two pattern products (kernels.h): sparse_matmul and sparse_outer.
#include <algorithm>

#include "cuda/arith.cuh"
#include "cuda/kernels.h"

namespace darnax::cuda {
namespace {

constexpr int kThreads = 256;
constexpr unsigned kMaxBlocks = 1u << 20;  // grid-stride loops cover the rest

// One thread per output (b, k), k fastest; out[b, k] = column_sum of column k over row b of x.
template <typename T>
__global__ void matmul_kernel(const T* x, int64_t batch, const T* values, DeviceCompressed w, T* out) {
  const int64_t total = batch * w.n_outer;
  for (int64_t o = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; o < total; o += int64_t{gridDim.x} * blockDim.x) {
    const int64_t b = o / w.n_outer, k = o % w.n_outer;
    out[o] = column_sum(x + b * w.n_inner, values, w.idx, w.ptr[k], w.ptr[k + 1], T(0));
  }
}

// The CPU's batch layout for sparse_outer: chunks of 64 lanes (4 blocks of 16), the last chunk as
// wide as the batch's lane blocks reach (16, 32, 48 or 64); a lane without a sample holds 0.
constexpr int64_t kLanes = 16, kChunk = 64;

// Half a warp per entry p (lane j of 16 = sample j of each lane block), a warp per two entries of
// one column. Per chunk: lane j's products of its blocks in block order (the first one alone,
// then each added), then the CPU's lane_sum tree (lane j + 8, + 4, + 2, + 1) by shuffles, then
// out = (0 + chunk 0) + chunk 1 + ... in lane 0.
template <typename T>
__global__ void outer_kernel(const T* x, const T* e, int64_t batch, DeviceCompressed w, T* out) {
  const int64_t warp = (blockIdx.x * int64_t{blockDim.x} + threadIdx.x) / 32;
  const int64_t warps = int64_t{gridDim.x} * blockDim.x / 32;
  const int lane = threadIdx.x % 32, j = lane % 16, half = lane / 16;
  const int64_t d = w.n_inner, K = w.n_outer, padded = (batch + kLanes - 1) / kLanes * kLanes;
  const int64_t chunks = (padded + kChunk - 1) / kChunk;
  for (int64_t k = warp; k < K; k += warps) {  // uniform over the warp: shuffles need every lane
    const int64_t p0 = w.ptr[k], p1 = w.ptr[k + 1];
    for (int64_t pair = p0; pair < p1; pair += 2) {
      const int64_t p = pair + half;
      const bool mine = p < p1;
      const int64_t i = mine ? w.idx[p] : 0;
      T total = T(0);
      for (int64_t c = 0; c < chunks; ++c) {
        const int64_t blocks = (padded - c * kChunk < kChunk ? padded - c * kChunk : kChunk) / kLanes;
        T s = T(0);
        for (int64_t blk = 0; blk < blocks; ++blk) {
          const int64_t b = c * kChunk + blk * kLanes + j;
          const T ev = b < batch ? e[b * K + k] : T(0), xv = b < batch ? x[b * d + i] : T(0);
          s = blk == 0 ? mul(ev, xv) : add(s, mul(ev, xv));
        }
        for (int width = 8; width >= 1; width /= 2) s = add(s, __shfl_down_sync(0xffffffffu, s, width, 16));
        total = add(c == 0 ? T(0) : total, s);  // lanes j > 0 carry junk, never written
      }
      if (mine && j == 0) out[p] = chunks == 0 ? T(0) : total;
    }
  }
}

unsigned grid_for(int64_t items, int per_block) {
  return static_cast<unsigned>(std::min<int64_t>((items + per_block - 1) / per_block, kMaxBlocks));
}

}  // namespace

template <typename T>
cudaError_t sparse_matmul(const T* x, int64_t batch, const T* values, const DeviceCompressed& w, T* out,
                          cudaStream_t stream) {
  const int64_t total = batch * w.n_outer;
  if (total == 0) return cudaSuccess;
  matmul_kernel<T><<<grid_for(total, kThreads), kThreads, 0, stream>>>(x, batch, values, w, out);
  return cudaGetLastError();
}

template <typename T>
cudaError_t sparse_outer(const T* x, const T* e, int64_t batch, const DeviceCompressed& w, T* out,
                         cudaStream_t stream) {
  if (w.nnz == 0) return cudaSuccess;
  outer_kernel<T><<<grid_for(w.n_outer, kThreads / 32), kThreads, 0, stream>>>(x, e, batch, w, out);
  return cudaGetLastError();
}

template cudaError_t sparse_matmul<float>(const float*, int64_t, const float*, const DeviceCompressed&, float*,
                                          cudaStream_t);
template cudaError_t sparse_matmul<double>(const double*, int64_t, const double*, const DeviceCompressed&,
                                           double*, cudaStream_t);
template cudaError_t sparse_outer<float>(const float*, const float*, int64_t, const DeviceCompressed&, float*,
                                         cudaStream_t);
template cudaError_t sparse_outer<double>(const double*, const double*, int64_t, const DeviceCompressed&,
                                          double*, cudaStream_t);

}  // namespace darnax::cuda
