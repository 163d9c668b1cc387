// The CUDA calls' FFI state (cuda_state.h).
#include "ffi/cuda_state.h"

namespace darnax {

ffi::TypeId CudaPattern::id = {};

static const XLA_FFI_TypeInfo kCudaPatternInfo = ffi::MakeTypeInfo<CudaPattern>();

void* cuda_pattern_type_id() { return &CudaPattern::id; }
void* cuda_pattern_type_info() { return const_cast<XLA_FFI_TypeInfo*>(&kCudaPatternInfo); }

CudaState cuda_state(CheckedState found, bool rows) {
  if (!found.has_value()) return ffi::Unexpected(std::move(found.error()));
  auto st = std::make_unique<CudaPattern>();
  st->checked = std::move(**found);
  st->device = std::make_unique<cuda::DevicePatternCache>(st->checked.pattern, rows);
  return st;
}

ffi::ErrorOr<const cuda::DevicePattern*> device_pattern(CudaPattern* state, cudaStream_t stream,
                                                        const char* target) {
  std::string err = "no device pattern: the call was not instantiated";
  const cuda::DevicePattern* dev = state && state->device ? state->device->on_current_device(stream, err) : nullptr;
  if (dev == nullptr) return ffi::Unexpected(ffi::Error::Internal(std::string(target) + ": " + err));
  return dev;
}

}  // namespace darnax
