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

const cuda::DevicePattern* device_pattern(CudaPattern* state, cudaStream_t stream, std::string& err) {
  if (state == nullptr || !state->device) {
    err = "no device pattern: the call was not instantiated";
    return nullptr;
  }
  return state->device->on_current_device(stream, err);
}

}  // namespace darnax
