#include "kernels/scratch.h"

#include <algorithm>
#include <new>

#include "kernels/fault.h"

namespace darnax {

ScratchCache& ScratchCache::local() {
  thread_local ScratchCache cache;
  return cache;
}

void* ScratchCache::take(size_t& bytes) {
  const size_t request = FaultInjection::request(bytes);  // test-only: a size that fails
  if (request != bytes) {  // nothrow, then throw as new would (sanitizers abort in new itself)
    void* data = ::operator new[](request, std::align_val_t(kAlign), std::nothrow);
    if (data == nullptr) throw std::bad_alloc();
    return data;
  }
  size_t best = free_.size();
  for (size_t f = 0; f < free_.size(); ++f)
    if (free_[f].bytes >= bytes && (best == free_.size() || free_[f].bytes < free_[best].bytes)) best = f;
  if (best == free_.size()) return ::operator new[](bytes, std::align_val_t(kAlign));
  const Buffer found = free_[best];
  free_.erase(free_.begin() + static_cast<std::ptrdiff_t>(best));
  bytes = found.bytes;
  return found.data;
}

void ScratchCache::give(void* data, size_t bytes) {
  if (bytes > kMaxKept) {
    release({data, bytes});
    return;
  }
  free_.push_back({data, bytes});
  if (free_.size() > kKeep) {  // drop the smallest
    auto smallest = std::min_element(free_.begin(), free_.end(),
                                     [](const Buffer& a, const Buffer& b) { return a.bytes < b.bytes; });
    release(*smallest);
    free_.erase(smallest);
  }
}

size_t ScratchCache::kept_bytes() const {
  size_t sum = 0;
  for (const Buffer& b : free_) sum += b.bytes;
  return sum;
}

size_t ScratchCache::largest_kept() const {
  size_t most = 0;
  for (const Buffer& b : free_) most = std::max(most, b.bytes);
  return most;
}

ScratchCache::~ScratchCache() {
  for (const Buffer& b : free_) release(b);
}

void ScratchCache::release(const Buffer& b) { ::operator delete[](b.data, std::align_val_t(kAlign)); }

}  // namespace darnax
