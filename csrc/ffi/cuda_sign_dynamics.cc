// XLA FFI handlers for platform CUDA: async_sign_sweeps and sync_sign_steps, with the operands,
// attributes and checks of their CPU twins (ffi/sign_dynamics.cc). Float64 fields (and the sync
// steps' changes) live in XLA scratch memory, which XLA hands out in stream order.
#include <vector>

#include "cuda/kernels.h"
#include "ffi/cuda_state.h"
#include "ffi/guard.h"
#include "ffi/layer_checks.h"

namespace darnax {

static constexpr char kAsyncSignSweeps[] = "darnax_async_sign_sweeps (CUDA)";
static constexpr char kSyncSignSteps[] = "darnax_sync_sign_steps (CUDA)";
static constexpr char kAsyncSignSweepsInstantiate[] = "darnax_async_sign_sweeps (CUDA instantiation)";
static constexpr char kSyncSignStepsInstantiate[] = "darnax_sync_sign_steps (CUDA instantiation)";

static CudaState LayerInstantiate(int64_t key, int64_t n_iter) {
  return cuda_state(find_layer_pattern(key, n_iter), true);
}

// `count` values of T from the scratch allocator, or nullptr.
template <typename T>
static T* take(ffi::ScratchAllocator& scratch, int64_t count) {
  const auto p = scratch.Allocate(sizeof(T) * static_cast<size_t>(count > 0 ? count : 1), alignof(double));
  return p.has_value() ? static_cast<T*>(*p) : nullptr;
}

static ffi::Error out_of_scratch(const char* target) {
  return ffi::Error(ffi::ErrorCode::kResourceExhausted, std::string(target) + ": no scratch device memory left");
}

// The CPU's permutation check, run on the device: a flag read back (one stream synchronisation
// per call); only when it is set is the order copied to the host, for the CPU's own message.
static std::string check_orders(const int32_t* order, int64_t rows, int64_t n, ffi::ScratchAllocator& scratch,
                                cudaStream_t stream, cudaError_t& status) {
  status = cudaSuccess;
  if (rows * n == 0) return "";
  const size_t bitmaps = cuda::check_orders_scratch(rows, n);
  uint32_t* bits = bitmaps > 0 ? take<uint32_t>(scratch, static_cast<int64_t>(bitmaps / sizeof(uint32_t))) : nullptr;
  int32_t* bad = take<int32_t>(scratch, 1);
  if ((bitmaps > 0 && bits == nullptr) || bad == nullptr) return "no scratch device memory left for the order check";
  int32_t found = 0;
  if ((status = cudaMemsetAsync(bad, 0, sizeof(int32_t), stream)) != cudaSuccess ||
      (status = cuda::check_orders(order, rows, n, bits, bad, stream)) != cudaSuccess ||
      (status = cudaMemcpyAsync(&found, bad, sizeof(int32_t), cudaMemcpyDeviceToHost, stream)) != cudaSuccess ||
      (status = cudaStreamSynchronize(stream)) != cudaSuccess || found == 0)
    return "";
  std::vector<int32_t> host(static_cast<size_t>(rows * n));
  if ((status = cudaMemcpyAsync(host.data(), order, sizeof(int32_t) * host.size(), cudaMemcpyDeviceToHost,
                                stream)) != cudaSuccess ||
      (status = cudaStreamSynchronize(stream)) != cudaSuccess)
    return "";
  std::vector<char> seen_host;
  for (int64_t r = 0; r < rows; ++r) {
    std::string err = check_permutation(host.data() + r * n, n, seen_host);
    if (!err.empty()) return err;
  }
  return "order: not a permutation (found on the device, not on the host copy)";
}

// The layer's buffers for the kernels, float64 scratch included (delta only when `need_delta`).
template <typename T>
static bool layer_buffers(const LayerInputs& in, int64_t batch, int64_t n, ffi::AnyBuffer& s_out,
                          IndexBuffer& flips, ffi::AnyBuffer& fields, bool need_delta,
                          ffi::ScratchAllocator& scratch, cuda::LayerBuffers<T>& buf) {
  buf = cuda::LayerBuffers<T>{in.h_ext.typed_data<T>(), in.values.typed_data<T>(), in.diag.typed_data<T>(),
                              in.s0.typed_data<T>(), batch, s_out.typed_data<T>(), flips.typed_data(),
                              fields.typed_data<T>(), nullptr, nullptr};
  buf.field = take<double>(scratch, batch * n);
  buf.delta = need_delta ? take<double>(scratch, batch * n) : nullptr;
  return buf.field != nullptr && (!need_delta || buf.delta != nullptr);
}

static ffi::Error AsyncImpl(cudaStream_t stream, ffi::ScratchAllocator scratch, ffi::AnyBuffer h_ext,
                            ffi::AnyBuffer values, ffi::AnyBuffer diag, ffi::AnyBuffer s0, IndexBuffer order,
                            int64_t key, int64_t n_sweeps, CudaPattern* st, ffi::Result<ffi::AnyBuffer> s_out,
                            ffi::Result<IndexBuffer> flips, ffi::Result<ffi::AnyBuffer> fields) {
  const LayerInputs in{h_ext, values, diag, s0, key, st ? &st->checked : nullptr};
  Pattern pat{};
  int64_t batch = 0, n = 0, order_sweeps = 0;
  std::string err = check_layer(in, n_sweeps, *s_out, *flips, *fields, pat, batch, n);
  if (err.empty()) err = check_order_shape(order.dimensions(), batch, n, n_sweeps, order_sweeps);
  if (!err.empty()) return invalid(err);
  const int64_t order_rows = order.dimensions()[0];
  cudaError_t status = cudaSuccess;
  err = check_orders(order.typed_data(), order_rows * order_sweeps, n, scratch, stream, status);
  if (status != cudaSuccess) return cuda_error(status, kAsyncSignSweeps);
  if (!err.empty()) return invalid(err);
  const auto dev = device_pattern(st, stream, kAsyncSignSweeps);
  if (dev.has_error()) return dev.error();
  return dispatch_float(h_ext.element_type(), "h_ext", [&](auto zero) {
    using T = decltype(zero);
    cuda::LayerBuffers<T> buf;
    if (!layer_buffers<T>(in, batch, n, *s_out, *flips, *fields, false, scratch, buf))
      return out_of_scratch(kAsyncSignSweeps);
    return cuda_error(cuda::async_sign_sweeps(buf, **dev, order.typed_data(), order_rows == 1, order_sweeps,
                                              n_sweeps, stream),
                      kAsyncSignSweeps);
  });
}

static ffi::Error SyncImpl(cudaStream_t stream, ffi::ScratchAllocator scratch, ffi::AnyBuffer h_ext,
                           ffi::AnyBuffer values, ffi::AnyBuffer diag, ffi::AnyBuffer s0, int64_t key,
                           int64_t n_steps, CudaPattern* st, ffi::Result<ffi::AnyBuffer> s_out,
                           ffi::Result<IndexBuffer> flips, ffi::Result<ffi::AnyBuffer> fields) {
  const LayerInputs in{h_ext, values, diag, s0, key, st ? &st->checked : nullptr};
  Pattern pat{};
  int64_t batch = 0, n = 0;
  std::string err = check_layer(in, n_steps, *s_out, *flips, *fields, pat, batch, n);
  if (!err.empty()) return invalid(err);
  const auto dev = device_pattern(st, stream, kSyncSignSteps);
  if (dev.has_error()) return dev.error();
  return dispatch_float(h_ext.element_type(), "h_ext", [&](auto zero) {
    using T = decltype(zero);
    cuda::LayerBuffers<T> buf;
    if (!layer_buffers<T>(in, batch, n, *s_out, *flips, *fields, true, scratch, buf))
      return out_of_scratch(kSyncSignSteps);
    return cuda_error(cuda::sync_sign_steps(buf, **dev, n_steps, stream), kSyncSignSteps);
  });
}

static auto BindLayer() {
  return bind_layer_inputs(ffi::Ffi::Bind().Ctx<ffi::PlatformStream<cudaStream_t>>().Ctx<ffi::ScratchAllocator>());
}

XLA_FFI_DEFINE_HANDLER_SYMBOL(CudaAsyncSignSweepsInstantiate, (guarded<kAsyncSignSweepsInstantiate, LayerInstantiate>),
                              bind_pattern(ffi::Ffi::BindInstantiate()).Attr<int64_t>("n_sweeps"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(CudaSyncSignStepsInstantiate, (guarded<kSyncSignStepsInstantiate, LayerInstantiate>),
                              bind_pattern(ffi::Ffi::BindInstantiate()).Attr<int64_t>("n_steps"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(CudaAsyncSignSweeps, (guarded<kAsyncSignSweeps, AsyncImpl>),
                              bind_layer_outputs<CudaPattern>(bind_pattern(BindLayer().Arg<IndexBuffer>())  // order
                                              .Attr<int64_t>("n_sweeps")));

XLA_FFI_DEFINE_HANDLER_SYMBOL(CudaSyncSignSteps, (guarded<kSyncSignSteps, SyncImpl>),
                              bind_layer_outputs<CudaPattern>(bind_pattern(BindLayer()).Attr<int64_t>("n_steps")));

}  // namespace darnax
