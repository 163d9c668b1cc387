// Batch-lane layout: a (B, n) row-major matrix stored as ceil(B / kLanes) blocks of (n, kLanes),
// so that one stored entry touches kLanes consecutive samples (a fixed-size, vectorisable loop).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "kernels/isa.h"

namespace darnax {
inline namespace DARNAX_ISA {

constexpr int64_t kLanes = 16;

// A GCC/Clang vector of T, DARNAX_VECTOR_BYTES wide (16: SSE2 or NEON; 32: AVX2); kLanes values
// of T are kVectors<T> such vectors, kept in registers by the fixed-size loops below.
template <typename T>
struct NativeVector {
  typedef T type __attribute__((vector_size(DARNAX_VECTOR_BYTES)));
};
template <typename T>
using Vec = typename NativeVector<T>::type;
template <typename T>
constexpr int64_t kPerVector = DARNAX_VECTOR_BYTES / sizeof(T);
template <typename T>
constexpr int64_t kVectors = kLanes / kPerVector<T>;

// A 16-byte vector of T whatever the build: horizontal sums reduce faster from it.
template <typename T>
struct NarrowVector {
  typedef T type __attribute__((vector_size(16)));
};
template <typename T>
using Vec16 = typename NarrowVector<T>::type;

template <typename V, typename T>
inline V load_as(const T* p) {
  V v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

template <typename T>
inline Vec<T> load_vec(const T* p) {
  return load_as<Vec<T>>(p);
}

inline int64_t lane_blocks(int64_t batch) { return (batch + kLanes - 1) / kLanes; }

// An uninitialised scratch array (std::vector would zero it first, which costs as much as
// packing at these sizes).
template <typename T>
class Scratch {
 public:
  explicit Scratch(int64_t n) : data_(new T[static_cast<size_t>(n > 0 ? n : 1)]) {}
  T* data() { return data_.get(); }
  const T* data() const { return data_.get(); }

 private:
  std::unique_ptr<T[]> data_;
};

// Packs a (batch, n) row-major matrix into lane blocks of type Out, zero-padding missing samples.
template <typename Out, typename In>
Scratch<Out> pack_lanes(const In* a, int64_t batch, int64_t n) {
  const int64_t blocks = lane_blocks(batch);
  Scratch<Out> out(blocks * n * kLanes);
  if (batch % kLanes != 0)  // only the last block has lanes without a sample
    std::fill(out.data() + (blocks - 1) * n * kLanes, out.data() + blocks * n * kLanes, Out(0));
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

// The kLanes values at `p` as kVectors<T> full-width vectors (to hoist out of a loop).
template <typename T>
struct LaneBlock {
  Vec<T> v[kVectors<T>];
  explicit LaneBlock(const T* p) {
    for (int64_t q = 0; q < kVectors<T>; ++q) v[q] = load_vec(p + q * kPerVector<T>);
  }
};

// One halving step from a full-width vector down to 16 bytes (lane j + width into lane j).
template <typename T>
inline Vec16<T> narrow(Vec<T> w) {
  if constexpr (sizeof(Vec<T>) == 16) {
    return w;
  } else if constexpr (sizeof(T) == 4) {
    static_assert(sizeof(Vec<T>) == 32, "float lanes: 16- or 32-byte vectors");
    return __builtin_shufflevector(w, w, 0, 1, 2, 3) + __builtin_shufflevector(w, w, 4, 5, 6, 7);
  } else {
    static_assert(sizeof(Vec<T>) == 32, "double lanes: 16- or 32-byte vectors");
    return __builtin_shufflevector(w, w, 0, 1) + __builtin_shufflevector(w, w, 2, 3);
  }
}

// sum_j a[j] * b[j] over the kLanes lanes, reduced by a fixed halving tree (lane j + width into
// lane j, width = kLanes / 2, ..., 1): whole vectors first, then halves of the last one, so the
// result is the same in every build (16- or 32-byte vectors) and call.
template <typename T>
inline T lane_dot(const LaneBlock<T>& a, const T* b) {
  constexpr int64_t per = kPerVector<T>, nv = kVectors<T>;
  Vec<T> v[nv];
  for (int64_t q = 0; q < nv; ++q) v[q] = a.v[q] * load_vec(b + q * per);
  for (int64_t m = nv / 2; m >= 1; m /= 2)
    for (int64_t q = 0; q < m; ++q) v[q] += v[q + m];
  Vec16<T> w = narrow<T>(v[0]);
  if constexpr (sizeof(T) == 4) {
    w += __builtin_shufflevector(w, w, 2, 3, 2, 3);
    w += __builtin_shufflevector(w, w, 1, 1, 1, 1);
  } else {
    w += __builtin_shufflevector(w, w, 1, 1);
  }
  return w[0];
}

}  // namespace DARNAX_ISA
}  // namespace darnax
