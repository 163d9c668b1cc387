// The sign dynamics of sign_dynamics.h run on kLanes samples at once: a lane block's fields and
// states are stored (N, kLanes), a unit's decision is one vector compare for all its samples, and
// a flip in any lane moves the fields of that unit's out-neighbours for every lane in a few
// vector operations. Each lane does exactly the float64 operations of the one-sample kernels, in
// the same order, so results are bitwise equal to them; lanes without a flip are left untouched.
// Asynchronous sweeps need a visiting order shared by the samples of the block.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>

#include "kernels/lanes.h"
#include "kernels/parallel.h"
#include "kernels/pattern.h"
#include "kernels/sign_dynamics.h"
#include "kernels/sparse_matmul.h"

namespace darnax {
inline namespace DARNAX_ISA {

using DVec = Vec<double>;
using DMask = Vec<int64_t>;
constexpr int64_t kDPer = kPerVector<double>, kDVec = kVectors<double>;

// One lane block: field = h_ext + s @ W (without the self term) and s = +-1, both (N, kLanes)
// float64.
struct LaneBlockState {
  double* field;
  double* s;
};

// Per-lane flip counters of a sweep or step, kept in registers: count[j] = -(flips of lane j).
struct LaneCounts {
  DMask neg[kDVec] = {};
};

// True when some lane of the mask is set: the mask folded onto one lane by shuffles.
template <typename Mask>
inline bool any_lane(Mask m) {
  if constexpr (sizeof(Mask) == 32) {
    m |= __builtin_shufflevector(m, m, 2, 3, 0, 1);
    m |= __builtin_shufflevector(m, m, 1, 0, 3, 2);
  } else {
    static_assert(sizeof(Mask) == 16, "double lanes: 16- or 32-byte vectors");
    m |= __builtin_shufflevector(m, m, 1, 0);
  }
  return m[0] != 0;
}

// Unit i in every lane: s_i = sign(field_i + diag_i s_i) (ties to +1), delta = new - old s_i
// (0 or +-2), flips counted. Returns whether some lane changed.
inline bool decide_lanes(LaneBlockState& st, int64_t i, double diag_i, DVec* delta,
                         LaneCounts& counts) {
  DMask changed{};
  double* s_i = st.s + i * kLanes;
  const double* field_i = st.field + i * kLanes;
  for (int64_t q = 0; q < kDVec; ++q) {
    const DVec s = load_vec(s_i + q * kDPer), t = load_vec(field_i + q * kDPer) + diag_i * s;
    const DVec next = t >= 0.0 ? DVec{} + 1.0 : DVec{} - 1.0;
    delta[q] = next - s;
    const DMask flip = delta[q] != 0.0;
    counts.neg[q] += flip;
    changed |= flip;
    std::memcpy(s_i + q * kDPer, &next, sizeof(next));
  }
  return any_lane(changed);
}

// The couplings read by pushes, row by row: through csr_pos while few rows have been pushed
// (no O(nnz) set-up per call: in training a phase pushes a few rows), from a row-ordered copy
// once many have (the copy then saves an indirection per entry). Same values either way.
template <typename T>
class PushValues {
 public:
  PushValues(const T* values, const Pattern& pat) : values_(values), pat_(pat) {}
  // Announces `rows` more pushed rows; past N / 8 of them, switches to the row-ordered copy.
  void will_push(int64_t rows) {
    pushed_ += rows;
    if (!by_row_ && pushed_ > pat_.by_row.n_outer / 8) {
      copy_.emplace(values_by_row(values_, pat_));
      by_row_ = copy_->data();
    }
  }
  // W[i, k] of the e-th entry in row order.
  double operator[](int64_t e) const {
    return static_cast<double>(by_row_ ? by_row_[e] : values_[pat_.csr_pos[e]]);
  }

 private:
  const T* values_;
  const Pattern& pat_;
  std::optional<Scratch<T>> copy_;
  const T* by_row_ = nullptr;
  int64_t pushed_ = 0;
};

// field[k] += delta * W[i, k] for the out-neighbours k of i, in the lanes where delta != 0.
template <typename T>
inline void push_lanes(const Pattern& pat, const PushValues<T>& values, int64_t i,
                       const DVec* delta, double* field) {
  DMask moved[kDVec];
  for (int64_t q = 0; q < kDVec; ++q) moved[q] = delta[q] != 0.0;
  for (int64_t e = pat.by_row.ptr[i]; e < pat.by_row.ptr[i + 1]; ++e) {
    const double w = values[e];
    double* fk = field + static_cast<int64_t>(pat.by_row.idx[e]) * kLanes;
    for (int64_t q = 0; q < kDVec; ++q) {
      const DVec f = load_vec(fk + q * kDPer);
      const DVec updated = moved[q] ? f + delta[q] * w : f;
      std::memcpy(fk + q * kDPer, &updated, sizeof(updated));
    }
  }
}

// Ends a sweep or step: writes the flips of the block's `lanes` samples at column t of
// flips (rows n_iter apart) and resets the counts; returns whether any of them flipped.
inline bool close_iteration(LaneCounts& counts, int64_t lanes, int64_t t, int64_t n_iter,
                            int32_t* flips) {
  bool any = false;
  for (int64_t j = 0; j < lanes; ++j) {
    const int32_t n = static_cast<int32_t>(-counts.neg[j / kDPer][j % kDPer]);
    flips[j * n_iter + t] = n;
    any |= n != 0;
  }
  counts = LaneCounts{};
  return any;
}

// Reports zero flips for the iterations after a fixed point at t.
inline void zero_after(int64_t t, int64_t lanes, int64_t n_iter, int32_t* flips) {
  for (int64_t j = 0; j < lanes; ++j)
    for (int64_t r = t + 1; r < n_iter; ++r) flips[j * n_iter + r] = 0;
}

// Asynchronous sweeps of one block; `order` holds one permutation per sweep, `order_stride` apart.
template <typename T>
void async_sweeps_lanes(const T* values, const Pattern& pat, const T* diag,
                        const int32_t* order, int64_t order_stride, int64_t n_sweeps,
                        int64_t lanes, LaneBlockState& st, int32_t* flips) {
  const int64_t n = pat.by_col.n_outer;
  PushValues<T> rows(values, pat);
  DVec delta[kDVec];
  LaneCounts counts;
  for (int64_t t = 0; t < n_sweeps; ++t) {
    const int32_t* visit = order + t * order_stride;
    for (int64_t u = 0; u < n; ++u) {
      const int64_t i = visit[u];
      if (decide_lanes(st, i, static_cast<double>(diag[i]), delta, counts)) {
        rows.will_push(1);
        push_lanes(pat, rows, i, delta, st.field);
      }
    }
    if (!close_iteration(counts, lanes, t, n_sweeps, flips)) return zero_after(t, lanes, n_sweeps, flips);
  }
}

// Synchronous steps of one block: every unit decides from the fields at the start of the step
// (a decision reads only its own field and state), then the units that changed push their rows.
// delta: (N, kLanes) scratch, the changes of the c-th changed unit in row c (so a step writes
// only as many rows as units changed); changed: (N,) scratch.
template <typename T>
void sync_steps_lanes(const T* values, const Pattern& pat, const T* diag, int64_t n_steps,
                      int64_t lanes, LaneBlockState& st, int32_t* flips, double* delta,
                      int32_t* changed) {
  const int64_t n = pat.by_col.n_outer;
  PushValues<T> rows(values, pat);
  LaneCounts counts;
  for (int64_t t = 0; t < n_steps; ++t) {
    int64_t count = 0;
    for (int64_t i = 0; i < n; ++i) {
      DVec d[kDVec];
      changed[count] = static_cast<int32_t>(i);
      const bool moved = decide_lanes(st, i, static_cast<double>(diag[i]), d, counts);
      std::memcpy(delta + count * kLanes, d, sizeof(d));
      count += moved;
    }
    rows.will_push(count);
    for (int64_t c = 0; c < count; ++c) {
      DVec d[kDVec];
      std::memcpy(d, delta + c * kLanes, sizeof(d));
      push_lanes(pat, rows, changed[c], d, st.field);
    }
    if (!close_iteration(counts, lanes, t, n_steps, flips)) return zero_after(t, lanes, n_steps, flips);
  }
}

// Writes a block's final states and total local fields (field + diag * s) back as (B, N) rows.
// Kept out of line: inlined beside the dynamics, its loops compiled several times slower.
template <typename T>
__attribute__((noinline)) void unpack_lane_block(const LaneBlockState& st, const T* diag, int64_t n,
                                                 int64_t lanes, T* s_out, T* fields_out) {
  double total[4 * kLanes];
  for (int64_t i = 0; i < n; i += 4) {
    const int64_t columns = std::min<int64_t>(4, n - i);
    for (int64_t c = 0; c < columns; ++c) {
      const double dg = static_cast<double>(diag[i + c]);
      for (int64_t q = 0; q < kDVec; ++q) {
        const int64_t at = (i + c) * kLanes + q * kDPer;
        const DVec t = load_vec(st.field + at) + dg * load_vec(st.s + at);
        std::memcpy(total + c * kLanes + q * kDPer, &t, sizeof(t));
      }
    }
    unpack_columns(st.s + i * kLanes, columns, lanes, s_out + i, n);
    unpack_columns(total, columns, lanes, fields_out + i, n);
  }
}

// Runs `block_fn(lanes, state, flips_of_block)` on every lane block of a batch (blocks split
// across threads): packs field = h_ext + s0 @ W and s0 first, and writes the final states and
// total local fields (field + diag * s) back as (B, N) row-major arrays. flips: (B, n_iter).
template <typename T, typename BlockFn>
void run_lane_blocks(const T* h_ext, const T* values, const Pattern& pat, const T* diag,
                     const T* s0, int64_t batch, int64_t n_iter, T* s_out, int32_t* flips,
                     T* fields_out, BlockFn&& block_fn) {
  const int64_t n = pat.by_col.n_outer, blocks = lane_blocks(batch);
  Scratch<double> field(blocks * n * kLanes);
  column_sums<T>(s0, batch, values, pat.by_col, h_ext,
                 [&](int64_t blk, int64_t k, int64_t columns, const T* acc) {
                   double* out = field.data() + (blk * n + k) * kLanes;
                   for (int64_t c = 0; c < columns * kLanes; ++c) out[c] = static_cast<double>(acc[c]);
                 });
  Scratch<double> s = pack_lanes<double>(s0, batch, n);
  parallel_for(blocks, layer_cost(pat, n_iter) * kLanes, kMinWorkPerThread,
               [&](int64_t blk0, int64_t blk1) {
    for (int64_t blk = blk0; blk < blk1; ++blk) {
      const int64_t b0 = blk * kLanes, lanes = std::min(kLanes, batch - b0);
      LaneBlockState st{field.data() + blk * n * kLanes, s.data() + blk * n * kLanes};
      block_fn(lanes, st, flips + b0 * n_iter);
      unpack_lane_block(st, diag, n, lanes, s_out + b0 * n, fields_out + b0 * n);
    }
  });
}

// sync_sign_steps on a batch, kLanes samples at a time (see sign_dynamics.h for the contract).
template <typename T>
void sync_sign_steps_lanes(const T* h_ext, const T* values, const Pattern& pat, const T* diag,
                           const T* s0, int64_t batch, int64_t n_steps, T* s, int32_t* flips,
                           T* fields_out) {
  const int64_t n = pat.by_col.n_outer;
  run_lane_blocks(h_ext, values, pat, diag, s0, batch, n_steps, s, flips, fields_out,
                  [&](int64_t lanes, LaneBlockState& st, int32_t* block_flips) {
                    Scratch<double> delta(n * kLanes);
                    Scratch<int32_t> changed(n);
                    sync_steps_lanes(values, pat, diag, n_steps, lanes, st,
                                     block_flips, delta.data(), changed.data());
                  });
}

// async_sign_sweeps on a batch whose samples share their orders: (order_sweeps, N).
template <typename T>
void async_sign_sweeps_lanes(const T* h_ext, const T* values, const Pattern& pat, const T* diag,
                             const T* s0, const int32_t* order, int64_t order_sweeps,
                             int64_t batch, int64_t n_sweeps, T* s, int32_t* flips,
                             T* fields_out) {
  const int64_t n = pat.by_col.n_outer;
  run_lane_blocks(h_ext, values, pat, diag, s0, batch, n_sweeps, s, flips, fields_out,
                  [&](int64_t lanes, LaneBlockState& st, int32_t* block_flips) {
                    async_sweeps_lanes(values, pat, diag, order,
                                       order_sweeps == 1 ? 0 : n, n_sweeps, lanes, st,
                                       block_flips);
                  });
}

// Lane blocks pay off from a few samples up; below that, one sample at a time does less work.
constexpr int64_t kMinLaneBatch = 4;

// The batch entry points (same results either way, bit for bit).
template <typename T>
void sync_sign_steps_batch(const T* h_ext, const T* values, const Pattern& pat, const T* diag,
                           const T* s0, int64_t batch, int64_t n_steps, T* s, int32_t* flips,
                           T* fields_out) {
  (batch >= kMinLaneBatch ? sync_sign_steps_lanes<T> : sync_sign_steps_samples<T>)(
      h_ext, values, pat, diag, s0, batch, n_steps, s, flips, fields_out);
}

// order: (B, order_sweeps, N), or (order_sweeps, N) shared by all samples when order_shared.
template <typename T>
void async_sign_sweeps_batch(const T* h_ext, const T* values, const Pattern& pat, const T* diag,
                             const T* s0, const int32_t* order, bool order_shared,
                             int64_t order_sweeps, int64_t batch, int64_t n_sweeps, T* s,
                             int32_t* flips, T* fields_out) {
  if (order_shared && batch >= kMinLaneBatch)
    async_sign_sweeps_lanes(h_ext, values, pat, diag, s0, order, order_sweeps, batch, n_sweeps, s,
                            flips, fields_out);
  else
    async_sign_sweeps_samples(h_ext, values, pat, diag, s0, order, order_shared, order_sweeps,
                              batch, n_sweeps, s, flips, fields_out);
}

}  // namespace DARNAX_ISA
}  // namespace darnax
