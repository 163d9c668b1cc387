// Batch-lane layout: a (B, n) row-major matrix stored as ceil(B / kLanes) blocks of (n, kLanes),
// so that one stored entry touches kLanes consecutive samples (a fixed-size, vectorisable loop).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

namespace darnax {

constexpr int64_t kLanes = 16;

// A 16-byte GCC/Clang vector of T (SSE2 on baseline x86-64, NEON on arm64); kLanes values of T
// are kVectors<T> such vectors, kept in registers by the fixed-size loops below.
template <typename T>
struct Vector16 {
  typedef T type __attribute__((vector_size(16)));
};
template <typename T>
using Vec = typename Vector16<T>::type;
template <typename T>
constexpr int64_t kPerVector = 16 / sizeof(T);
template <typename T>
constexpr int64_t kVectors = kLanes / kPerVector<T>;

template <typename T>
inline Vec<T> load_vec(const T* p) {
  Vec<T> v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

inline int64_t lane_blocks(int64_t batch) { return (batch + kLanes - 1) / kLanes; }

// Packs a (batch, n) row-major matrix into lane blocks of type Out, zero-padding missing samples.
template <typename Out, typename In>
std::vector<Out> pack_lanes(const In* a, int64_t batch, int64_t n) {
  std::vector<Out> out(static_cast<size_t>(lane_blocks(batch) * n * kLanes), Out(0));
  for (int64_t b = 0; b < batch; ++b) {
    Out* block = out.data() + (b / kLanes) * n * kLanes + b % kLanes;
    const In* row = a + b * n;
    for (int64_t i = 0; i < n; ++i) block[i * kLanes] = static_cast<Out>(row[i]);
  }
  return out;
}

// acc[j] += sum over entries p in [p0, p1) of values[p] * block[idx[p]][j], for the kLanes lanes j.
// Entries are added in pattern order, lane by lane: the result never depends on how work is split.
template <typename Acc, typename T>
inline void gather_axpy(const T* values, const int32_t* idx, int64_t p0, int64_t p1,
                        const Acc* block, Acc* acc) {
  constexpr int64_t per = kPerVector<Acc>, nv = kVectors<Acc>;
  Vec<Acc> lanes[nv];
  for (int64_t q = 0; q < nv; ++q) lanes[q] = load_vec(acc + q * per);
  for (int64_t p = p0; p < p1; ++p) {
    const Acc v = static_cast<Acc>(values[p]);
    const Acc* xi = block + static_cast<int64_t>(idx[p]) * kLanes;
    for (int64_t q = 0; q < nv; ++q) lanes[q] += v * load_vec(xi + q * per);
  }
  for (int64_t q = 0; q < nv; ++q) std::memcpy(acc + q * per, &lanes[q], sizeof(lanes[q]));
}

// sum_j a[j] * b[j] over the kLanes lanes: vector partial sums, then a fixed-order reduction,
// so the result is the same on every call.
template <typename T>
inline T lane_dot(const T* a, const T* b) {
  constexpr int64_t per = kPerVector<T>, nv = kVectors<T>;
  Vec<T> sum = load_vec(a) * load_vec(b);
  for (int64_t q = 1; q < nv; ++q) sum += load_vec(a + q * per) * load_vec(b + q * per);
  T out = T(0);
  for (int64_t j = 0; j < per; ++j) out += sum[j];
  return out;
}

}  // namespace darnax
