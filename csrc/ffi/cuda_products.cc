// XLA FFI handlers for platform CUDA: sparse_matmul and sparse_outer, with the operands,
// attributes and checks of their CPU twins (ffi/sparse_matmul.cc, ffi/sparse_outer.cc).
#include "cuda/kernels.h"
#include "ffi/cuda_state.h"
#include "ffi/guard.h"
#include "ffi/product_checks.h"

namespace darnax {

static constexpr char kSparseMatmul[] = "darnax_sparse_matmul (CUDA)";
static constexpr char kSparseMatmulInstantiate[] = "darnax_sparse_matmul (CUDA instantiation)";
static constexpr char kSparseOuter[] = "darnax_sparse_outer (CUDA)";
static constexpr char kSparseOuterInstantiate[] = "darnax_sparse_outer (CUDA instantiation)";

static CudaState ProductInstantiate(int64_t key) { return cuda_state(find_by_col(key), false); }

static ffi::Error SparseMatmulImpl(cudaStream_t stream, ffi::AnyBuffer x, ffi::AnyBuffer values, int64_t key,
                                   CudaPattern* st, ffi::Result<ffi::AnyBuffer> out) {
  const StoredPattern* pattern = nullptr;
  std::string err = check_matmul(st ? &st->checked : nullptr, key, x, values, *out, pattern);
  if (!err.empty()) return invalid(err);
  const auto dev = device_pattern(st, stream, kSparseMatmul);
  if (dev.has_error()) return dev.error();
  return dispatch_float(x.element_type(), "x", [&](auto zero) {
    using T = decltype(zero);
    return cuda_error(cuda::sparse_matmul(x.typed_data<T>(), x.dimensions()[0], values.typed_data<T>(), (*dev)->by_col,
                                          out->typed_data<T>(), stream),
                      kSparseMatmul);
  });
}

static ffi::Error SparseOuterImpl(cudaStream_t stream, ffi::AnyBuffer x, ffi::AnyBuffer e, int64_t key,
                                  CudaPattern* st, ffi::Result<ffi::AnyBuffer> out) {
  const StoredPattern* pattern = nullptr;
  std::string err = check_outer(st ? &st->checked : nullptr, key, x, e, *out, pattern);
  if (!err.empty()) return invalid(err);
  const auto dev = device_pattern(st, stream, kSparseOuter);
  if (dev.has_error()) return dev.error();
  return dispatch_float(x.element_type(), "x", [&](auto zero) {
    using T = decltype(zero);
    return cuda_error(cuda::sparse_outer(x.typed_data<T>(), e.typed_data<T>(), x.dimensions()[0], (*dev)->by_col,
                                         out->typed_data<T>(), stream),
                      kSparseOuter);
  });
}

XLA_FFI_DEFINE_HANDLER_SYMBOL(CudaSparseMatmulInstantiate, (guarded<kSparseMatmulInstantiate, ProductInstantiate>),
                              bind_pattern(ffi::Ffi::BindInstantiate()));

XLA_FFI_DEFINE_HANDLER_SYMBOL(CudaSparseMatmul, (guarded<kSparseMatmul, SparseMatmulImpl>),
                              bind_pattern(ffi::Ffi::Bind()
                                               .Ctx<ffi::PlatformStream<cudaStream_t>>()
                                               .Arg<ffi::AnyBuffer>()   // x (B, d)
                                               .Arg<ffi::AnyBuffer>())  // values (nnz,)
                                  .Ctx<ffi::State<CudaPattern>>()
                                  .Ret<ffi::AnyBuffer>()  // out (B, K)
);

XLA_FFI_DEFINE_HANDLER_SYMBOL(CudaSparseOuterInstantiate, (guarded<kSparseOuterInstantiate, ProductInstantiate>),
                              bind_pattern(ffi::Ffi::BindInstantiate()));

XLA_FFI_DEFINE_HANDLER_SYMBOL(CudaSparseOuter, (guarded<kSparseOuter, SparseOuterImpl>),
                              bind_pattern(ffi::Ffi::Bind()
                                               .Ctx<ffi::PlatformStream<cudaStream_t>>()
                                               .Arg<ffi::AnyBuffer>()   // x (B, d)
                                               .Arg<ffi::AnyBuffer>())  // e (B, K)
                                  .Ctx<ffi::State<CudaPattern>>()
                                  .Ret<ffi::AnyBuffer>()  // out (nnz,)
);

}  // namespace darnax
