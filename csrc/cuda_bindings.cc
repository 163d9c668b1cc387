// The CUDA side of the darnax._ext module: whether this build has CUDA kernels, and their XLA
// FFI handler capsules and state type for platform CUDA (empty in a CPU-only build, so that
// Python can ask either build the same questions).
#include <nanobind/nanobind.h>

#ifdef DARNAX_CUDA
#include "xla/ffi/api/ffi.h"
#endif

namespace nb = nanobind;

#ifdef DARNAX_CUDA
namespace darnax {
XLA_FFI_DECLARE_HANDLER_SYMBOL(CudaSparseMatmul);
XLA_FFI_DECLARE_HANDLER_SYMBOL(CudaSparseMatmulInstantiate);
XLA_FFI_DECLARE_HANDLER_SYMBOL(CudaSparseOuter);
XLA_FFI_DECLARE_HANDLER_SYMBOL(CudaSparseOuterInstantiate);
XLA_FFI_DECLARE_HANDLER_SYMBOL(CudaAsyncSignSweeps);
XLA_FFI_DECLARE_HANDLER_SYMBOL(CudaAsyncSignSweepsInstantiate);
XLA_FFI_DECLARE_HANDLER_SYMBOL(CudaSyncSignSteps);
XLA_FFI_DECLARE_HANDLER_SYMBOL(CudaSyncSignStepsInstantiate);
void* cuda_pattern_type_id();
void* cuda_pattern_type_info();
}  // namespace darnax
#endif

namespace darnax {
namespace {

#ifdef DARNAX_CUDA
template <typename Fn>
nb::dict stages(Fn* instantiate, Fn* execute) {
  nb::dict d;
  d["instantiate"] = nb::capsule(reinterpret_cast<void*>(instantiate));
  d["execute"] = nb::capsule(reinterpret_cast<void*>(execute));
  return d;
}
#endif

nb::dict cuda_registrations() {
  nb::dict d;
#ifdef DARNAX_CUDA
  d["darnax_sparse_matmul"] = stages(CudaSparseMatmulInstantiate, CudaSparseMatmul);
  d["darnax_sparse_outer"] = stages(CudaSparseOuterInstantiate, CudaSparseOuter);
  d["darnax_async_sign_sweeps"] = stages(CudaAsyncSignSweepsInstantiate, CudaAsyncSignSweeps);
  d["darnax_sync_sign_steps"] = stages(CudaSyncSignStepsInstantiate, CudaSyncSignSteps);
#endif
  return d;
}

nb::dict cuda_ffi_types() {
  nb::dict d;
#ifdef DARNAX_CUDA
  nb::dict t;
  t["type_id"] = nb::capsule(cuda_pattern_type_id());
  t["type_info"] = nb::capsule(cuda_pattern_type_info());
  d["darnax_cuda_pattern"] = t;
#endif
  return d;
}

}  // namespace

void bind_cuda(nb::module_& m) {
#ifdef DARNAX_CUDA
  m.attr("built_with_cuda") = true;
#else
  m.attr("built_with_cuda") = false;
#endif
  m.def("cuda_registrations", &cuda_registrations,
        "XLA FFI targets for platform CUDA: name -> {stage: capsule} (empty without DARNAX_CUDA).");
  m.def("cuda_ffi_types", &cuda_ffi_types,
        "XLA FFI state types for platform CUDA: name -> {type_id, type_info} (empty without DARNAX_CUDA).");
}

}  // namespace darnax
