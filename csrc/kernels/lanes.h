// Batch-lane layout: a (B, n) row-major matrix stored as ceil(B / kLanes) blocks of (n, kLanes),
// so that one stored entry touches kLanes consecutive samples (a fixed-size, vectorisable loop).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <utility>

#include "kernels/isa.h"
#include "kernels/scratch.h"

namespace darnax {
inline namespace DARNAX_ISA {

constexpr int64_t kLanes = 16;

// A GCC/Clang vector of T, DARNAX_VECTOR_BYTES wide (16: SSE2 or NEON; 32: AVX2; 64: AVX-512); kLanes values
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
// packing at these sizes), cache-line aligned, from and back to the thread's ScratchCache.
// Create and destroy it on one thread (other threads may use it in between).
template <typename T>
class Scratch {
 public:
  explicit Scratch(int64_t n) : bytes_(sizeof(T) * static_cast<size_t>(n > 0 ? n : 1)) {
    data_ = static_cast<T*>(ScratchCache::local().take(bytes_));
  }
  Scratch(Scratch&& other) noexcept : data_(other.data_), bytes_(other.bytes_) { other.data_ = nullptr; }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  Scratch& operator=(Scratch&&) = delete;
  ~Scratch() {
    if (data_) ScratchCache::local().give(data_, bytes_);
  }
  T* data() { return data_; }
  const T* data() const { return data_; }

 private:
  T* data_;
  size_t bytes_;
};

// A 4 x 4 tile of T in registers, transposed (rows become columns).
template <typename T>
struct Tile4 {
  typedef T Row __attribute__((vector_size(4 * sizeof(T))));
  Row r[4];
  void transpose() {
    const Row t0 = __builtin_shufflevector(r[0], r[1], 0, 4, 1, 5);
    const Row t1 = __builtin_shufflevector(r[0], r[1], 2, 6, 3, 7);
    const Row t2 = __builtin_shufflevector(r[2], r[3], 0, 4, 1, 5);
    const Row t3 = __builtin_shufflevector(r[2], r[3], 2, 6, 3, 7);
    r[0] = __builtin_shufflevector(t0, t2, 0, 1, 4, 5);
    r[1] = __builtin_shufflevector(t0, t2, 2, 3, 6, 7);
    r[2] = __builtin_shufflevector(t1, t3, 0, 1, 4, 5);
    r[3] = __builtin_shufflevector(t1, t3, 2, 3, 6, 7);
  }
};

// Where lane block g (samples 16g..16g+15) of entry i lies in a packed array of n entries whose
// lane blocks are grouped `chunk` lanes at a time (a multiple of kLanes): chunk c holds entries
// 0..n-1 of its blocks side by side, (n, chunk) row-major (the last chunk may be narrower). With
// chunk = kLanes this is the plain layout, (blocks, n, kLanes).
struct LaneLayout {
  int64_t n, padded, chunk;  // padded: lane_blocks(batch) * kLanes
  int64_t chunk_lanes(int64_t c) const { return std::min(chunk, padded - c * chunk); }
  int64_t chunk_offset(int64_t c) const { return c * chunk * n; }
  int64_t block_offset(int64_t g) const {  // of block g's lanes of entry 0
    const int64_t c = g * kLanes / chunk;
    return chunk_offset(c) + g * kLanes - c * chunk;
  }
  int64_t stride(int64_t g) const { return chunk_lanes(g * kLanes / chunk); }  // entry to entry
};

inline LaneLayout lane_layout(int64_t batch, int64_t n, int64_t chunk = kLanes) {
  return LaneLayout{n, lane_blocks(batch) * kLanes, chunk};
}

// Packs the first n columns of a (batch, ld) row-major matrix (ld = n: all of a (batch, n) one)
// into lane blocks of type Out at `out` (lane_blocks(batch) * n * kLanes values, laid out as
// lane_layout(batch, n, chunk) says), zero-padding missing samples. Tiles of 4 samples x 4
// entries are transposed in registers, so that reads and writes both run along memory (a strided
// scalar copy costs as much as the product that follows).
template <typename Out, typename In>
void pack_lanes_into(const In* a, int64_t batch, int64_t n, int64_t ld, Out* out,
                     int64_t chunk = kLanes) {
  const LaneLayout layout = lane_layout(batch, n, chunk);
  const int64_t blocks = lane_blocks(batch), n4 = n - n % 4;
  using InRow = typename Tile4<In>::Row;
  using OutRow = typename Tile4<Out>::Row;
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int64_t b0 = blk * kLanes, lanes = std::min(kLanes, batch - b0), groups = lanes / 4;
    const int64_t stride = layout.stride(blk);
    Out* block = out + layout.block_offset(blk);
    const In* rows = a + b0 * ld;
    if (lanes < kLanes)  // only the last block has lanes without a sample
      for (int64_t i = 0; i < n; ++i) std::fill(block + i * stride + lanes, block + i * stride + kLanes, Out(0));
    for (int64_t i = 0; i < n4; i += 4) {  // the 4 cache lines of entries i..i+3, in full
      for (int64_t g = 0; g < groups; ++g) {
        Tile4<In> tile;
        for (int64_t r = 0; r < 4; ++r) tile.r[r] = load_as<InRow>(rows + (4 * g + r) * ld + i);
        tile.transpose();
        for (int64_t c = 0; c < 4; ++c) {
          const OutRow column = __builtin_convertvector(tile.r[c], OutRow);
          std::memcpy(block + (i + c) * stride + 4 * g, &column, sizeof(column));
        }
      }
    }
    for (int64_t j = 0; j < lanes; ++j)  // what the tiles left: the last n % 4 entries, the
      for (int64_t i = (j < 4 * groups ? n4 : 0); i < n; ++i)  // last lanes % 4 samples
        block[i * stride + j] = static_cast<Out>(rows[j * ld + i]);
  }
}

// The inverse of pack_lanes_into for up to 4 columns: out[j * ld + c] = cols[c * kLanes + j] for
// j < lanes, c < n_cols, converted to Out; full groups of 4 columns go through Tile4.
template <typename Out, typename Acc>
inline void unpack_columns(const Acc* cols, int64_t n_cols, int64_t lanes, Out* out, int64_t ld) {
  if (n_cols < 4) {
    for (int64_t c = 0; c < n_cols; ++c)
      for (int64_t j = 0; j < lanes; ++j) out[j * ld + c] = static_cast<Out>(cols[c * kLanes + j]);
    return;
  }
  using OutRow = typename Tile4<Out>::Row;
  for (int64_t g = 0; g < kLanes && g < lanes; g += 4) {
    Tile4<Acc> tile;
    for (int64_t c = 0; c < 4; ++c) tile.r[c] = load_as<typename Tile4<Acc>::Row>(cols + c * kLanes + g);
    tile.transpose();
    for (int64_t j = 0; j < 4 && g + j < lanes; ++j) {
      const OutRow row = __builtin_convertvector(tile.r[j], OutRow);
      std::memcpy(out + (g + j) * ld, &row, sizeof(row));
    }
  }
}

// acc[j] = start[j] + sum over entries p in [p0, p1) of values[p] * block[idx[p]][j], for the
// kLanes lanes j (start: a lane block, or null for zeros).
// Two running sums (even and odd positions of the range, each in range order) hide the adder's
// latency; they are added at the end. The order depends only on the range, never on threads or
// vector width.
template <typename Acc, typename T>
inline void gather_axpy(const T* values, const int32_t* idx, int64_t p0, int64_t p1,
                        const Acc* block, const Acc* start, Acc* acc) {
  constexpr int64_t per = kPerVector<Acc>, nv = kVectors<Acc>;
  Vec<Acc> even[nv], odd[nv];
  for (int64_t q = 0; q < nv; ++q) {
    even[q] = start ? load_vec(start + q * per) : Vec<Acc>{};
    odd[q] = Vec<Acc>{};
  }
  int64_t p = p0;
  for (; p + 2 <= p1; p += 2) {
    const Acc v0 = static_cast<Acc>(values[p]), v1 = static_cast<Acc>(values[p + 1]);
    const Acc* x0 = block + static_cast<int64_t>(idx[p]) * kLanes;
    const Acc* x1 = block + static_cast<int64_t>(idx[p + 1]) * kLanes;
    for (int64_t q = 0; q < nv; ++q) {
      even[q] += v0 * load_vec(x0 + q * per);
      odd[q] += v1 * load_vec(x1 + q * per);
    }
  }
  if (p < p1) {
    const Acc v = static_cast<Acc>(values[p]);
    const Acc* xi = block + static_cast<int64_t>(idx[p]) * kLanes;
    for (int64_t q = 0; q < nv; ++q) even[q] += v * load_vec(xi + q * per);
  }
  for (int64_t q = 0; q < nv; ++q) {
    even[q] += odd[q];
    std::memcpy(acc + q * per, &even[q], sizeof(even[q]));
  }
}

// The kLanes values at `p` as kVectors<T> full-width vectors (to hoist out of a loop).
template <typename T>
struct LaneBlock {
  Vec<T> v[kVectors<T>];
  LaneBlock() = default;
  explicit LaneBlock(const T* p) {
    for (int64_t q = 0; q < kVectors<T>; ++q) v[q] = load_vec(p + q * kPerVector<T>);
  }
};

// The first and the second half of a GCC/Clang vector's lanes, as a vector of half the width.
template <typename V>
constexpr size_t kLanesOf = sizeof(V) / sizeof(std::declval<V>()[0]);
template <size_t From, typename V, size_t... I>
inline auto lanes_from(V v, std::index_sequence<I...>) {
  return __builtin_shufflevector(v, v, (From + I)...);
}
template <typename V>
inline auto lower_half(V v) {
  return lanes_from<0>(v, std::make_index_sequence<kLanesOf<V> / 2>{});
}
template <typename V>
inline auto upper_half(V v) {
  return lanes_from<kLanesOf<V> / 2>(v, std::make_index_sequence<kLanesOf<V> / 2>{});
}

// The halving steps from a vector down to 16 bytes (lane j + width into lane j), in every build.
template <typename T, typename V>
inline Vec16<T> narrow(V w) {
  if constexpr (sizeof(V) == 16) {
    return w;
  } else {
    return narrow<T>(lower_half(w) + upper_half(w));
  }
}

// sum_j s[j] over the kLanes lanes of s, reduced by a fixed halving tree (lane j + width into
// lane j, width = kLanes / 2, ..., 1): whole vectors first, then halves of the last one, so the
// result is the same in every build (16-, 32- or 64-byte vectors) and call.
template <typename T>
inline T lane_sum(LaneBlock<T> s) {
  constexpr int64_t nv = kVectors<T>;
  for (int64_t m = nv / 2; m >= 1; m /= 2)
    for (int64_t q = 0; q < m; ++q) s.v[q] += s.v[q + m];
  Vec16<T> w = narrow<T>(s.v[0]);
  if constexpr (sizeof(T) == 4) {
    w += __builtin_shufflevector(w, w, 2, 3, 2, 3);
    w += __builtin_shufflevector(w, w, 1, 1, 1, 1);
  } else {
    w += __builtin_shufflevector(w, w, 1, 1);
  }
  return w[0];
}

// out[e] = 0 + lane_sum(s[e]) for 8 lane blocks s[e], bit for bit. With 8- or 16-float vectors the 8
// sums share their shuffles: the halving tree runs on all of them at once (a transposed
// reduction), so each step costs one shuffle pair per two or four entries instead of per entry.
template <typename T>
inline void lane_sum8(const LaneBlock<T>* s, T* out) {
  if constexpr (sizeof(T) == 4 && sizeof(Vec<T>) == 32) {
    typedef Vec<T> V;
    V h[8];
    for (int e = 0; e < 8; ++e) h[e] = s[e].v[0] + s[e].v[1];  // lane j + 8
    V g[4];
    for (int m = 0; m < 4; ++m)  // lane j + 4: g[m] = [entry 2m | entry 2m + 1], 4 lanes each
      g[m] = __builtin_shufflevector(h[2 * m], h[2 * m + 1], 0, 1, 2, 3, 8, 9, 10, 11) +
             __builtin_shufflevector(h[2 * m], h[2 * m + 1], 4, 5, 6, 7, 12, 13, 14, 15);
    V q[2];
    for (int m = 0; m < 2; ++m)  // lane j + 2: q[m] = [4m, 4m + 2 | 4m + 1, 4m + 3], 2 lanes each
      q[m] = __builtin_shufflevector(g[2 * m], g[2 * m + 1], 0, 1, 8, 9, 4, 5, 12, 13) +
             __builtin_shufflevector(g[2 * m], g[2 * m + 1], 2, 3, 10, 11, 6, 7, 14, 15);
    // lane j + 1: r = entries [0, 2, 4, 6 | 1, 3, 5, 7]
    const V r = __builtin_shufflevector(q[0], q[1], 0, 2, 8, 10, 4, 6, 12, 14) +
                __builtin_shufflevector(q[0], q[1], 1, 3, 9, 11, 5, 7, 13, 15);
    const V sums = __builtin_shufflevector(r, r, 0, 4, 1, 5, 2, 6, 3, 7) + V{};
    std::memcpy(out, &sums, sizeof(sums));
  } else if constexpr (sizeof(T) == 4 && sizeof(Vec<T>) == 64) {  // the same tree, two entries a vector
    typedef Vec<T> V;
    typedef T Half __attribute__((vector_size(32)));
    V g[4];
    for (int m = 0; m < 4; ++m)  // lane j + 8: g[m] = [entry 2m | entry 2m + 1], 8 lanes each
      g[m] = __builtin_shufflevector(s[2 * m].v[0], s[2 * m + 1].v[0], 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19,
                                     20, 21, 22, 23) +
             __builtin_shufflevector(s[2 * m].v[0], s[2 * m + 1].v[0], 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26,
                                     27, 28, 29, 30, 31);
    V q[2];
    for (int m = 0; m < 2; ++m)  // lane j + 4: q[m] = entries 4m..4m + 3, 4 lanes each
      q[m] = __builtin_shufflevector(g[2 * m], g[2 * m + 1], 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25,
                                     26, 27) +
             __builtin_shufflevector(g[2 * m], g[2 * m + 1], 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29,
                                     30, 31);
    // lane j + 2: r = entries 0..7, 2 lanes each
    const V r = __builtin_shufflevector(q[0], q[1], 0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29) +
                __builtin_shufflevector(q[0], q[1], 2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27, 30, 31);
    // lane j + 1
    const Half sums = __builtin_shufflevector(r, r, 0, 2, 4, 6, 8, 10, 12, 14) +
                      __builtin_shufflevector(r, r, 1, 3, 5, 7, 9, 11, 13, 15) + Half{};
    std::memcpy(out, &sums, sizeof(sums));
  } else {
    for (int e = 0; e < 8; ++e) out[e] = T(0) + lane_sum(s[e]);
  }
}

}  // namespace DARNAX_ISA
}  // namespace darnax
