// Device copies of a stored pattern's index arrays, one per CUDA device, made once and freed
// with their owner. Plain C++ on the CUDA runtime: no XLA, no nanobind.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include "cuda/kernels.h"
#include "store/pattern_store.h"

namespace darnax::cuda {

class DevicePatternCache {
 public:
  // rows: also copy the row orientation and csr_pos (the sign dynamics push rows).
  DevicePatternCache(PatternRef pattern, bool rows) : pattern_(std::move(pattern)), rows_(rows) {}
  DevicePatternCache(const DevicePatternCache&) = delete;
  DevicePatternCache& operator=(const DevicePatternCache&) = delete;
  ~DevicePatternCache();

  // The pattern on the current device: copied on this call for a device not seen before
  // (cudaMalloc, then copies ordered on `stream` from the stored host arrays, which the
  // stored pattern keeps alive), then reused by every later call. nullptr and `err` on failure.
  const DevicePattern* on_current_device(cudaStream_t stream, std::string& err);

 private:
  struct Copy {
    int device;
    DevicePattern pattern;
    std::vector<void*> allocations;
  };
  PatternRef pattern_;
  bool rows_;
  std::mutex mutex_;
  std::deque<Copy> copies_;  // one per device that ran the call; a deque keeps them in place
};

}  // namespace darnax::cuda
