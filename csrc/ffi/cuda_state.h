// The FFI state of a CUDA call naming a stored pattern: what the CPU handlers keep (the stored
// pattern, found once at instantiation, checked by the same code), plus its device copies.
//
// XLA's GPU runtime instantiates a call when it builds the thunk, without a stream or a device
// (xla/backends/gpu/runtime/custom_call_thunk.cc), so the index arrays cannot be copied there:
// they are copied by the first execution on each device and kept in this state, freed with it
// (with the compiled program). Later executions copy nothing.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "cuda/device_pattern.h"
#include "ffi/pattern_attrs.h"

namespace darnax {

struct CudaPattern {
  static ffi::TypeId id;  // assigned by XLA when darnax registers the type
  CheckedPattern checked;
  std::unique_ptr<cuda::DevicePatternCache> device;
};

using CudaState = ffi::ErrorOr<std::unique_ptr<CudaPattern>>;

// The CUDA state for an instantiated call: `found` (find_by_col, find_square or
// find_layer_pattern's result) with a device cache (rows: the sign dynamics' row orientation).
CudaState cuda_state(CheckedState found, bool rows);

// The state's device pattern on the stream's (current) device, copied there on first use; the
// Internal error of `target` when the state is missing or a CUDA call failed.
ffi::ErrorOr<const cuda::DevicePattern*> device_pattern(CudaPattern* state, cudaStream_t stream,
                                                        const char* target);

// The FFI error for a failed CUDA call of `target` ("" when status is cudaSuccess: Success).
inline ffi::Error cuda_error(cudaError_t status, const char* target) {
  if (status == cudaSuccess) return ffi::Error::Success();
  return ffi::Error::Internal(std::string(target) + ": CUDA error " + cudaGetErrorName(status) + ": " +
                              cudaGetErrorString(status));
}

// The type's id and deleter, for registration with XLA (platform CUDA).
void* cuda_pattern_type_id();
void* cuda_pattern_type_info();

}  // namespace darnax
