// Device copies of a stored pattern (device_pattern.h).
#include "cuda/device_pattern.h"

namespace darnax::cuda {
namespace {

// Copies `a` to a new device allocation (recorded in `allocations`); false on a CUDA error.
bool upload(const std::vector<int32_t>& a, cudaStream_t stream, std::vector<void*>& allocations,
            const int32_t*& out, cudaError_t& status) {
  void* p = nullptr;
  status = cudaMalloc(&p, sizeof(int32_t) * (a.empty() ? 1 : a.size()));
  if (status != cudaSuccess) return false;
  allocations.push_back(p);
  out = static_cast<const int32_t*>(p);
  if (!a.empty()) status = cudaMemcpyAsync(p, a.data(), sizeof(int32_t) * a.size(), cudaMemcpyHostToDevice, stream);
  return status == cudaSuccess;
}

void free_all(int device, const std::vector<void*>& allocations) {
  int current = -1;
  if (cudaGetDevice(&current) != cudaSuccess || cudaSetDevice(device) != cudaSuccess) return;
  for (void* p : allocations) cudaFree(p);  // waits for work that may still read them
  cudaSetDevice(current);
}

}  // namespace

DevicePatternCache::~DevicePatternCache() {
  for (const Copy& c : copies_) free_all(c.device, c.allocations);
}

const DevicePattern* DevicePatternCache::on_current_device(cudaStream_t stream, std::string& err) {
  int device = -1;
  cudaError_t status = cudaGetDevice(&device);
  if (status != cudaSuccess) {
    err = std::string("cudaGetDevice: ") + cudaGetErrorString(status);
    return nullptr;
  }
  std::lock_guard<std::mutex> lock(mutex_);
  for (const Copy& c : copies_)
    if (c.device == device) return &c.pattern;
  Copy c{device, {}, {}};
  const StoredPattern& sp = *pattern_;
  DeviceCompressed& col = c.pattern.by_col;
  col.n_outer = sp.n_cols();
  col.n_inner = sp.n_rows();
  col.nnz = sp.nnz();
  bool ok = upload(sp.col_ptr(), stream, c.allocations, col.ptr, status) &&
            upload(sp.row_idx(), stream, c.allocations, col.idx, status);
  if (ok && rows_) {
    DeviceCompressed& row = c.pattern.by_row;
    row.n_outer = sp.n_rows();
    row.n_inner = sp.n_cols();
    row.nnz = sp.nnz();
    ok = upload(sp.row_ptr(), stream, c.allocations, row.ptr, status) &&
         upload(sp.col_idx(), stream, c.allocations, row.idx, status) &&
         upload(sp.csr_pos(), stream, c.allocations, c.pattern.csr_pos, status);
  }
  if (!ok) {
    err = std::string("copying the pattern to device ") + std::to_string(device) + ": " + cudaGetErrorString(status);
    free_all(device, c.allocations);
    return nullptr;
  }
  copies_.push_back(std::move(c));
  return &copies_.back().pattern;
}

}  // namespace darnax::cuda
