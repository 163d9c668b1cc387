// CUDA kernels of the sign dynamics (kernels.h): initial fields, synchronous steps (a block per
// sample), asynchronous sweeps (a warp per sample), and the check of visiting orders.
#include <algorithm>

#include "cuda/arith.cuh"
#include "cuda/kernels.h"

namespace darnax::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kWarpsPerBlock = kThreads / 32;

// field[b, k] = float64(h_ext[b, k] + s0[b, :] @ W[:, k] summed in T), as the CPU's column_sums
// with init = h_ext; s[b, k] = s0[b, k]. One thread per (b, k).
template <typename T>
__global__ void initial_fields(LayerBuffers<T> buf, DeviceCompressed w) {
  const int64_t n = w.n_outer, total = buf.batch * n;
  for (int64_t o = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; o < total; o += int64_t{gridDim.x} * blockDim.x) {
    const int64_t b = o / n, k = o % n;
    const T sum = column_sum(buf.s0 + b * n, buf.values, w.idx, w.ptr[k], w.ptr[k + 1], buf.h_ext[o]);
    buf.field[o] = static_cast<double>(sum);
    buf.s[o] = buf.s0[o];
  }
}

// Unit i's decision: +1 when field_i + diag_i s_i >= 0 (ties to +1), else -1, in float64.
template <typename T>
__device__ __forceinline__ T decide(double field_i, T diag_i, double s_i) {
  return add(field_i, mul(static_cast<double>(diag_i), s_i)) >= 0.0 ? T(1) : T(-1);
}

// The outputs' epilogue, per unit: fields = T(field + diag s), the final total local fields.
template <typename T>
__device__ __forceinline__ void finish(const LayerBuffers<T>& buf, int64_t o, int64_t i) {
  buf.fields[o] = static_cast<T>(add(buf.field[o], mul(static_cast<double>(buf.diag[i]), static_cast<double>(buf.s[o]))));
}

// One block per sample. A step: every unit decides from the step's starting fields and states
// and records delta = new - old (0 when kept); then field k adds delta_j W[j, k] for the units
// j that changed, in ascending j (column k's entries are sorted by row), as the CPU pushes rows
// in ascending unit order. counts: two step counters used alternately, so one can be cleared
// while the other is read.
template <typename T>
__global__ void sync_kernel(LayerBuffers<T> buf, DevicePattern pat, int64_t n_steps) {
  __shared__ int counts[2];
  const int64_t b = blockIdx.x, n = pat.by_col.n_outer;
  double *field = buf.field + b * n, *delta = buf.delta + b * n;
  T* s = buf.s + b * n;
  int32_t* flips = buf.flips + b * n_steps;
  if (threadIdx.x == 0) counts[0] = 0;
  __syncthreads();
  for (int64_t t = 0; t < n_steps; ++t) {
    int mine = 0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
      const double old = static_cast<double>(s[i]);
      const T next = decide(field[i], buf.diag[i], old);
      const double d = static_cast<double>(next) - old;  // exact: +-1 minus a T
      delta[i] = d;
      if (d != 0.0) {  // changed (NaN != 0: a NaN state counts as changed, as on the CPU)
        s[i] = next;
        ++mine;
      }
    }
    if (mine) atomicAdd(&counts[t & 1], mine);
    if (threadIdx.x == 0) counts[(t + 1) & 1] = 0;
    __syncthreads();
    const int count = counts[t & 1];
    if (threadIdx.x == 0) flips[t] = count;
    if (count == 0) {  // a fixed point: every later step would change nothing
      for (int64_t r = t + 1 + threadIdx.x; r < n_steps; r += blockDim.x) flips[r] = 0;
      break;
    }
    for (int64_t k = threadIdx.x; k < n; k += blockDim.x) {
      double f = field[k];
      for (int64_t p = pat.by_col.ptr[k]; p < pat.by_col.ptr[k + 1]; ++p) {
        const double dj = delta[pat.by_col.idx[p]];
        if (dj != 0.0) f = add(f, mul(dj, static_cast<double>(buf.values[p])));
      }
      field[k] = f;
    }
    __syncthreads();
  }
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) finish(buf, b * n + i, i);
}

// One warp per sample. Every lane reads the visited unit's field and state and takes the same
// decision; after a barrier (all have read s_i), a flip's row is pushed by the lanes, each
// entry's field by one lane (a row's columns are distinct), and lane 0 stores the new state;
// a second barrier makes the pushes visible before the next decision.
template <typename T>
__global__ void async_kernel(LayerBuffers<T> buf, DevicePattern pat, const int32_t* order, bool order_shared,
                             int64_t order_sweeps, int64_t n_sweeps) {
  const int64_t b = blockIdx.x * int64_t{kWarpsPerBlock} + threadIdx.x / 32;
  if (b >= buf.batch) return;  // whole warps leave together
  const int lane = threadIdx.x % 32;
  const int64_t n = pat.by_col.n_outer, stride = order_sweeps == 1 ? 0 : n;
  const int32_t* own = order + (order_shared ? 0 : b * order_sweeps * n);
  double* field = buf.field + b * n;
  T* s = buf.s + b * n;
  int32_t* flips = buf.flips + b * n_sweeps;
  const int32_t *row_ptr = pat.by_row.ptr, *col_idx = pat.by_row.idx;
  for (int64_t t = 0; t < n_sweeps; ++t) {
    const int32_t* visit = own + t * stride;
    int32_t count = 0;
    for (int64_t u = 0; u < n; ++u) {
      const int64_t i = visit[u];
      const double old = static_cast<double>(s[i]);
      const T next = decide(field[i], buf.diag[i], old);
      const double d = static_cast<double>(next) - old;
      if (d != 0.0) {  // uniform over the warp: every lane decided alike
        __syncwarp();
        for (int64_t q = row_ptr[i] + lane; q < row_ptr[i + 1]; q += 32) {
          double* fk = field + col_idx[q];
          *fk = add(*fk, mul(d, static_cast<double>(buf.values[pat.csr_pos[q]])));
        }
        if (lane == 0) s[i] = next;
        ++count;
        __syncwarp();
      }
    }
    if (lane == 0) flips[t] = count;
    if (count == 0) {
      for (int64_t r = t + 1 + lane; r < n_sweeps; r += 32) flips[r] = 0;
      break;
    }
  }
  __syncwarp();
  for (int64_t i = lane; i < n; i += 32) finish(buf, b * n + i, i);
}

// One block per row of order (rows `gridDim.x` apart), marking each unit in a bitmap of the row
// (shared memory, or this block's part of `global_bits` for rows too long for it): a unit out
// of range or marked twice sets bad[0].
__global__ void orders_kernel(const int32_t* order, int64_t rows, int64_t n, uint32_t* global_bits, int32_t* bad) {
  extern __shared__ uint32_t shared_bits[];
  const int64_t words = (n + 31) / 32;
  uint32_t* bits = global_bits ? global_bits + blockIdx.x * words : shared_bits;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    for (int64_t w = threadIdx.x; w < words; w += blockDim.x) bits[w] = 0;
    __syncthreads();
    for (int64_t t = threadIdx.x; t < n; t += blockDim.x) {
      const int32_t i = order[r * n + t];
      const uint32_t bit = 1u << (i & 31);
      if (i < 0 || i >= n || (atomicOr(&bits[i / 32], bit) & bit) != 0) *bad = 1;
    }
    __syncthreads();
  }
}

// The order check's launch: shared bitmaps up to 48 kB a row, else at most 64 rows at once in
// global scratch.
constexpr int64_t kSharedBitmapBytes = 48 * 1024, kGlobalBitmapRows = 64;

int64_t bitmap_bytes(int64_t n) { return (n + 31) / 32 * 4; }

unsigned grid_for(int64_t items, int per_block) {
  return static_cast<unsigned>(std::min<int64_t>((items + per_block - 1) / per_block, int64_t{1} << 20));
}

template <typename T>
cudaError_t start_layer(const LayerBuffers<T>& buf, const DevicePattern& pat, cudaStream_t stream) {
  const int64_t total = buf.batch * pat.by_col.n_outer;
  if (total > 0) initial_fields<T><<<grid_for(total, kThreads), kThreads, 0, stream>>>(buf, pat.by_col);
  return cudaGetLastError();
}

}  // namespace

size_t check_orders_scratch(int64_t rows, int64_t n) {
  const int64_t bytes = bitmap_bytes(n);
  return bytes <= kSharedBitmapBytes ? 0 : static_cast<size_t>(std::min(rows, kGlobalBitmapRows) * bytes);
}

cudaError_t check_orders(const int32_t* order, int64_t rows, int64_t n, uint32_t* scratch, int32_t* bad,
                         cudaStream_t stream) {
  if (rows * n == 0) return cudaSuccess;
  const int64_t bytes = bitmap_bytes(n);
  const bool shared = bytes <= kSharedBitmapBytes;
  const int64_t blocks = std::min(rows, shared ? int64_t{1} << 20 : kGlobalBitmapRows);
  orders_kernel<<<static_cast<unsigned>(blocks), kThreads, shared ? bytes : 0, stream>>>(
      order, rows, n, shared ? nullptr : scratch, bad);
  return cudaGetLastError();
}

template <typename T>
cudaError_t sync_sign_steps(const LayerBuffers<T>& buf, const DevicePattern& pat, int64_t n_steps,
                            cudaStream_t stream) {
  if (buf.batch == 0) return cudaSuccess;
  cudaError_t err = start_layer(buf, pat, stream);
  if (err != cudaSuccess) return err;
  sync_kernel<T><<<static_cast<unsigned>(buf.batch), kThreads, 0, stream>>>(buf, pat, n_steps);
  return cudaGetLastError();
}

template <typename T>
cudaError_t async_sign_sweeps(const LayerBuffers<T>& buf, const DevicePattern& pat, const int32_t* order,
                              bool order_shared, int64_t order_sweeps, int64_t n_sweeps, cudaStream_t stream) {
  if (buf.batch == 0) return cudaSuccess;
  cudaError_t err = start_layer(buf, pat, stream);
  if (err != cudaSuccess) return err;
  async_kernel<T><<<grid_for(buf.batch, kWarpsPerBlock), kThreads, 0, stream>>>(buf, pat, order, order_shared,
                                                                               order_sweeps, n_sweeps);
  return cudaGetLastError();
}

template cudaError_t sync_sign_steps<float>(const LayerBuffers<float>&, const DevicePattern&, int64_t, cudaStream_t);
template cudaError_t sync_sign_steps<double>(const LayerBuffers<double>&, const DevicePattern&, int64_t,
                                             cudaStream_t);
template cudaError_t async_sign_sweeps<float>(const LayerBuffers<float>&, const DevicePattern&, const int32_t*, bool,
                                              int64_t, int64_t, cudaStream_t);
template cudaError_t async_sign_sweeps<double>(const LayerBuffers<double>&, const DevicePattern&, const int32_t*,
                                               bool, int64_t, int64_t, cudaStream_t);

}  // namespace darnax::cuda
