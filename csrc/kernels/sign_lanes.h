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
// float64; live: the lanes that hold a sample (a batch's last block may have fewer than kLanes).
struct LaneBlockState {
  double* field;
  double* s;
  DMask live[kDVec];
  LaneBlockState(double* field_, double* s_, int64_t lanes) : field(field_), s(s_) {
    for (int64_t q = 0; q < kDVec; ++q)
      for (int64_t j = 0; j < kDPer; ++j) live[q][j] = q * kDPer + j < lanes ? -1 : 0;
  }
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

// Unit i in every live lane: s_i = sign(field_i + diag_i s_i) (ties to +1), delta = new - old
// s_i (0 or +-2), flips counted; lanes without a sample keep their state (delta 0), so they
// never push a row nor move a field. Returns whether some lane changed.
inline bool decide_lanes(LaneBlockState& st, int64_t i, double diag_i, DVec* delta,
                         LaneCounts& counts) {
  DMask changed{};
  double* s_i = st.s + i * kLanes;
  const double* field_i = st.field + i * kLanes;
  for (int64_t q = 0; q < kDVec; ++q) {
    const DVec s = load_vec(s_i + q * kDPer), t = load_vec(field_i + q * kDPer) + diag_i * s;
    const DVec next = st.live[q] ? (t >= 0.0 ? DVec{} + 1.0 : DVec{} - 1.0) : s;
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

// Lane blocks pay off from a few samples up: a block with fewer runs its samples one at a time,
// which does less work than kLanes lanes of which most hold no sample.
constexpr int64_t kMinLaneBatch = 4;

// Runs the dynamics of a batch, row-major (B, N) inputs and outputs, flips (B, n_iter): first
// field = h_ext + s0 @ W (summed in T by lane blocks, kept in float64), then every lane block
// that holds at least kMinLaneBatch samples runs in lanes, `block_fn(lanes, state, flips of the
// block)`, and the samples of the other blocks (every block when !in_lanes) one at a time,
// `sample_fn(b, row_values, s, field, flips of b)` on one row each. Blocks and samples are split
// across threads; the final states and total local fields (field + diag * s) are written back.
// Either way a sample's result is the same, bit for bit.
template <typename T, typename BlockFn, typename SampleFn>
void run_layer(const T* h_ext, const T* values, const Pattern& pat, const T* diag, const T* s0,
               int64_t batch, int64_t n_iter, bool in_lanes, T* s_out, int32_t* flips,
               T* fields_out, BlockFn&& block_fn, SampleFn&& sample_fn) {
  const int64_t n = pat.by_col.n_outer, rest = batch % kLanes;
  const int64_t lane_runs =  // the leading blocks that run in lanes
      !in_lanes ? 0 : (rest == 0 || rest >= kMinLaneBatch ? lane_blocks(batch) : batch / kLanes);
  const int64_t first_alone = std::min(batch, lane_runs * kLanes), alone = batch - first_alone;
  Scratch<double> field(lane_blocks(batch) * n * kLanes);
  column_sums<T>(s0, batch, values, pat.by_col, h_ext,
                 [&](int64_t blk, int64_t k, int64_t columns, const T* acc) {
                   double* out = field.data() + (blk * n + k) * kLanes;
                   for (int64_t c = 0; c < columns * kLanes; ++c) out[c] = static_cast<double>(acc[c]);
                 });
  Scratch<double> s = pack_lanes<double>(s0, first_alone, n);
  const Scratch<T> row_values = alone > 0 ? values_by_row(values, pat) : Scratch<T>(0);
  const double cost = layer_cost(pat, n_iter) * static_cast<double>(first_alone + alone);
  const int64_t items = lane_runs + alone;
  parallel_for(items, cost / static_cast<double>(std::max<int64_t>(items, 1)), kMinWorkPerThread,
               [&](int64_t i0, int64_t i1) {
    Scratch<double> row(alone > 0 ? n : 0);
    for (int64_t item = i0; item < i1; ++item) {
      if (item < lane_runs) {
        const int64_t b0 = item * kLanes, lanes = std::min(kLanes, batch - b0);
        LaneBlockState st(field.data() + item * n * kLanes, s.data() + item * n * kLanes, lanes);
        block_fn(lanes, st, flips + b0 * n_iter);
        unpack_lane_block(st, diag, n, lanes, s_out + b0 * n, fields_out + b0 * n);
        continue;
      }
      const int64_t b = first_alone + item - lane_runs;
      const double* lane = field.data() + (b / kLanes) * n * kLanes + b % kLanes;
      for (int64_t i = 0; i < n; ++i) row.data()[i] = lane[i * kLanes];
      std::copy(s0 + b * n, s0 + (b + 1) * n, s_out + b * n);
      sample_fn(b, row_values.data(), s_out + b * n, row.data(), flips + b * n_iter);
      finish_sample(row.data(), diag, s_out + b * n, n, fields_out + b * n);
    }
  });
}

// The batch entry points: sync_sign_steps and async_sign_sweeps (sign_dynamics.h) on a batch.
template <typename T>
void sync_sign_steps_batch(const T* h_ext, const T* values, const Pattern& pat, const T* diag,
                           const T* s0, int64_t batch, int64_t n_steps, T* s, int32_t* flips,
                           T* fields_out) {
  const int64_t n = pat.by_col.n_outer;
  run_layer(h_ext, values, pat, diag, s0, batch, n_steps, true, s, flips, fields_out,
            [&](int64_t lanes, LaneBlockState& st, int32_t* block_flips) {
              Scratch<double> delta(n * kLanes);
              Scratch<int32_t> changed(n);
              sync_steps_lanes(values, pat, diag, n_steps, lanes, st, block_flips, delta.data(),
                               changed.data());
            },
            [&](int64_t, const T* row_values, T* s_b, double* field_b, int32_t* flips_b) {
              sync_sign_steps(row_values, pat, diag, n_steps, s_b, field_b, flips_b);
            });
}

// order: (B, order_sweeps, N), or (order_sweeps, N) shared by all samples when order_shared,
// with order_sweeps 1 (one order for every sweep) or n_sweeps (one per sweep). Lanes need the
// samples of a block to share their orders.
template <typename T>
void async_sign_sweeps_batch(const T* h_ext, const T* values, const Pattern& pat, const T* diag,
                             const T* s0, const int32_t* order, bool order_shared,
                             int64_t order_sweeps, int64_t batch, int64_t n_sweeps, T* s,
                             int32_t* flips, T* fields_out) {
  const int64_t n = pat.by_col.n_outer, stride = order_sweeps == 1 ? 0 : n;
  run_layer(h_ext, values, pat, diag, s0, batch, n_sweeps, order_shared, s, flips, fields_out,
            [&](int64_t lanes, LaneBlockState& st, int32_t* block_flips) {
              async_sweeps_lanes(values, pat, diag, order, stride, n_sweeps, lanes, st, block_flips);
            },
            [&](int64_t b, const T* row_values, T* s_b, double* field_b, int32_t* flips_b) {
              const int32_t* own = order + (order_shared ? 0 : b * order_sweeps * n);
              async_sign_sweeps(row_values, pat, diag, own, stride, n_sweeps, s_b, field_b, flips_b);
            });
}

}  // namespace DARNAX_ISA
}  // namespace darnax
