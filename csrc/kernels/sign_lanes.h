// The sign dynamics of sign_dynamics.h run on kLanes samples at once: a lane block's fields and
// states are stored (N, kLanes), a unit's decision is one vector compare for all its samples, and
// a flip in any lane moves the fields of that unit's out-neighbours for every lane in a few
// vector operations. Each lane does exactly the float64 operations of the one-sample kernels, in
// the same order, so results are bitwise equal to them; lanes without a flip are left untouched.
// Asynchronous sweeps need a visiting order shared by the samples of the block. Batches:
// sign_batch.h.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>

#include "kernels/lanes.h"
#include "kernels/pattern.h"
#include "kernels/sign_dynamics.h"

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

// Stores columns k..k+columns-1 of a lane block's initial fields, summed in T (as column_sums
// hands them over: `columns` lane blocks of T), as float64 at `field` (that block's unit k).
template <typename T>
inline void widen_fields(const T* acc, int64_t columns, double* field) {
  for (int64_t c = 0; c < columns * kLanes; ++c) field[c] = static_cast<double>(acc[c]);
}

// Per-lane flip counters of a sweep or step, kept in registers: count[j] = -(flips of lane j).
struct LaneCounts {
  DMask neg[kDVec] = {};
};

// True when some lane of the mask is set: the mask's halves or-ed together down to one lane.
template <typename Mask>
inline bool any_lane(Mask m) {
  if constexpr (kLanesOf<Mask> == 1) {
    return m[0] != 0;
  } else {
    return any_lane(lower_half(m) | upper_half(m));
  }
}

// Unit i in every live lane: s_i = sign(field_i + diag_i s_i) (ties to +1), delta = new - old
// s_i (0 or +-2), flips counted; lanes without a sample keep their state (delta 0), so they
// never push a row nor move a field. Returns whether some lane changed; the states are stored
// only then (in training few units change: unconditional stores cost a step of all units 8%).
inline bool decide_lanes(LaneBlockState& st, int64_t i, double diag_i, DVec* delta,
                         LaneCounts& counts) {
  DMask changed{};
  double* s_i = st.s + i * kLanes;
  const double* field_i = st.field + i * kLanes;
  DVec next[kDVec];
  for (int64_t q = 0; q < kDVec; ++q) {
    const DVec s = load_vec(s_i + q * kDPer), t = load_vec(field_i + q * kDPer) + diag_i * s;
    next[q] = st.live[q] ? (t >= 0.0 ? DVec{} + 1.0 : DVec{} - 1.0) : s;
    delta[q] = next[q] - s;
    const DMask flip = delta[q] != 0.0;
    counts.neg[q] += flip;
    changed |= flip;
  }
  const bool any = any_lane(changed);
  if (any) std::memcpy(s_i, next, sizeof(next));
  return any;
}

// Bytes of a layer's couplings plus one lane block's fields that stay in a core's L2 cache (1-2
// MiB on the machines measured).
constexpr int64_t kCachedBytes = int64_t{1} << 20;

// The couplings read by pushes, row by row: through csr_pos while few rows have been pushed (no
// O(nnz) set-up per call: in training a phase pushes a few rows), from a row-ordered copy once
// many have (the copy then saves an indirection per entry). Same values either way. The copy
// costs a gather per coupling; where the couplings and fields stay in cache a gather through
// csr_pos costs about as much, so the copy waits until N rows (about nnz entries) have been
// pushed: the seed layer's clamped phase (2,000 units, fan-in 20, ~470 rows) took 247 instead of
// 284 us without its copy. Out of cache the copy pays from N / 8 rows: without it, 5 steps from
// sign(h) took 19.6 instead of 16.5 ms at 20,000 units (fan-in 20), 344 instead of 301 ms at
// 100,000 (fan-in 100). bench/RESULTS.md, section 25.
template <typename T>
class PushValues {
 public:
  PushValues(const T* values, const Pattern& pat)
      : values_(values),
        pat_(pat),
        rows_before_copy_(fits_cache(pat) ? pat.by_row.n_outer : pat.by_row.n_outer / 8) {}
  // Announces `rows` more pushed rows; past rows_before_copy_ of them, switches to the copy.
  void will_push(int64_t rows) {
    pushed_ += rows;
    if (!by_row_ && pushed_ > rows_before_copy_) {
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
  static bool fits_cache(const Pattern& pat) {
    const int64_t n = pat.by_row.n_outer, nnz = pat.by_row.nnz;
    return nnz * static_cast<int64_t>(sizeof(T)) + n * kLanes * static_cast<int64_t>(sizeof(double)) <= kCachedBytes;
  }

  const int64_t rows_before_copy_;
  std::optional<Scratch<T>> copy_;
  const T* by_row_ = nullptr;
  int64_t pushed_ = 0;
};

// field[k] += delta * W[i, k] for the row-order entries e in [e0, e1) (of one row i, k =
// by_row.idx[e]), in the lanes where delta != 0.
template <typename T>
inline void push_lanes(const Compressed& by_row, const PushValues<T>& values, int64_t e0,
                       int64_t e1, const DVec* delta, double* field) {
  DMask moved[kDVec];
  for (int64_t q = 0; q < kDVec; ++q) moved[q] = delta[q] != 0.0;
  for (int64_t e = e0; e < e1; ++e) {
    const double w = values[e];
    double* fk = field + static_cast<int64_t>(by_row.idx[e]) * kLanes;
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
        push_lanes(pat.by_row, rows, pat.by_row.ptr[i], pat.by_row.ptr[i + 1], delta, st.field);
      }
    }
    if (!close_iteration(counts, lanes, t, n_sweeps, flips)) return zero_after(t, lanes, n_sweeps, flips);
  }
}

// Decides the units unit_at(0 .. n_units - 1) of a synchronous step (decide_units: units
// [i0, i1)) from the fields at its start (a decision reads only its own field and state) and
// lists the units that changed: the c-th in changed[c], its
// changes in row c of delta ((count, kLanes), so a step writes only as many rows as units
// changed). Returns the count. The flips are counted in a local copy of `counts`, written back
// once: in registers, and never a cache line shared with another thread's counts.
template <typename T, typename UnitAt>
int64_t decide_each(LaneBlockState& st, const T* diag, int64_t n_units, UnitAt unit_at,
                    int32_t* changed, double* delta, LaneCounts& counts) {
  LaneCounts local = counts;
  int64_t count = 0;
  for (int64_t u = 0; u < n_units; ++u) {
    const int64_t i = unit_at(u);
    DVec d[kDVec];
    if (decide_lanes(st, i, static_cast<double>(diag[i]), d, local)) {  // rare in training
      changed[count] = static_cast<int32_t>(i);
      std::memcpy(delta + count * kLanes, d, sizeof(d));
      ++count;
    }
  }
  counts = local;
  return count;
}

template <typename T>
int64_t decide_units(LaneBlockState& st, const T* diag, int64_t i0, int64_t i1, int32_t* changed,
                     double* delta, LaneCounts& counts) {
  return decide_each(st, diag, i1 - i0, [i0](int64_t u) { return i0 + u; }, changed, delta, counts);
}

// std::lower_bound without branches on the values: where a row crosses a unit range is a coin
// toss for the branch predictor (with std::lower_bound, a step split in 2 chunks on one thread
// took 25% more time than unsplit at 5,000 units, fan-in 30; with this, 17%).
inline const int32_t* first_not_below(const int32_t* first, const int32_t* last, int64_t key) {
  int64_t len = last - first;
  if (len == 0) return first;
  while (len > 1) {
    const int64_t half = len / 2;
    first = first[half] < key ? first + half : first;
    len -= half;
  }
  return first + (*first < key);
}

// Entries [e0, e1) of row i whose columns lie in [k0, k1): a row's columns are sorted, so two
// binary searches (none for a whole row).
inline void row_part(const Compressed& by_row, int64_t i, int64_t k0, int64_t k1, int64_t& e0,
                     int64_t& e1) {
  const int32_t *first = by_row.idx + by_row.ptr[i], *last = by_row.idx + by_row.ptr[i + 1];
  const int32_t* lo = k0 == 0 ? first : first_not_below(first, last, k0);
  const int32_t* hi = k1 == by_row.n_inner ? last : first_not_below(lo, last, k1);
  e0 = lo - by_row.idx;
  e1 = hi - by_row.idx;
}

// Pushes the `count` listed changes (as decide_units lists them), in list order, into the fields
// of units [k0, k1) only.
template <typename T>
void push_units(const Compressed& by_row, const PushValues<T>& rows, const int32_t* changed,
                const double* delta, int64_t count, int64_t k0, int64_t k1, double* field) {
  for (int64_t c = 0; c < count; ++c) {
    DVec d[kDVec];
    std::memcpy(d, delta + c * kLanes, sizeof(d));
    int64_t e0, e1;
    row_part(by_row, changed[c], k0, k1, e0, e1);
    push_lanes(by_row, rows, e0, e1, d, field);
  }
}

// The units a synchronous step must decide after one in which `changed` units flipped: those
// units (their self term changed) and their rows' columns (their fields moved). Any other unit
// sees the field and state it decided on last step, so it would keep its state: skipping it
// changes nothing. Writes them ascending into `units` and returns their count, or -1 (decide
// every unit) once they exceed N / 4, where sorting and marking cost more than they save: the
// marking stops there (in training the first steps flip hundreds of units; marking all their
// rows took 70% of the steps' own time outside decisions and pushes: bench/RESULTS.md, 26).
// mark: (N,) zeros, left zeros.
inline int64_t units_to_decide(const Compressed& by_row, const int32_t* changed, int64_t count,
                               uint8_t* mark, int32_t* units) {
  const int64_t n = by_row.n_outer, limit = n / 4;
  int64_t listed = 0;
  const auto add = [&](int64_t k) {
    if (!mark[k]) {
      mark[k] = 1;
      if (listed < limit) units[listed] = static_cast<int32_t>(k);
      ++listed;
    }
  };
  for (int64_t c = 0; c < count && listed <= limit; ++c) {
    add(changed[c]);
    for (int64_t e = by_row.ptr[changed[c]]; e < by_row.ptr[changed[c] + 1]; ++e) add(by_row.idx[e]);
  }
  if (listed > limit) {
    std::fill(mark, mark + n, uint8_t{0});
    return -1;
  }
  for (int64_t u = 0; u < listed; ++u) mark[units[u]] = 0;
  std::sort(units, units + listed);
  return listed;
}

// Synchronous steps of one block: the units that may change decide (all of them in the first
// step, then see units_to_decide), then the units that changed push their rows. The pushes of a
// step that a step of all units follows wait for it: decide_all(rows, pushes, deltas, pending,
// changed, delta, counts) first pushes the `pending` changes listed at pushes / deltas into
// every field (as push_units on [0, N) in list order), then does what decide_units on [0, N)
// does and returns its count: on this thread by default, or split across threads, each chunk
// pushing into and deciding its own units (split_sync.h), so that the hundreds of pushes of
// training's first steps are shared too. Every field receives the same additions in the same
// order before its unit decides: results are bitwise those of pushing at once.
// delta: (2N, kLanes) scratch; changed: (2N,) scratch (the lists of two consecutive steps).
template <typename T, typename DecideAll>
void sync_steps_lanes(const T* values, const Pattern& pat, const T* diag, int64_t n_steps,
                      int64_t lanes, LaneBlockState& st, int32_t* flips, double* delta,
                      int32_t* changed, DecideAll&& decide_all) {
  const int64_t n = pat.by_col.n_outer;
  PushValues<T> rows(values, pat);
  LaneCounts counts;
  Scratch<int32_t> units(n / 4 + 1);
  Scratch<uint8_t> mark(n);
  std::fill(mark.data(), mark.data() + n, uint8_t{0});
  int64_t n_units = -1, pending = 0;  // n_units -1: every unit; pending: last step's unpushed changes
  for (int64_t t = 0; t < n_steps; ++t) {
    int32_t* const now = changed + (t % 2) * n;
    double* const now_delta = delta + (t % 2) * n * kLanes;
    const int32_t* const before = changed + (1 - t % 2) * n;
    const double* const before_delta = delta + (1 - t % 2) * n * kLanes;
    const int32_t* listed = units.data();
    const int64_t count = n_units < 0 ? decide_all(rows, before, before_delta, pending, now, now_delta, counts)
                                      : decide_each(st, diag, n_units, [listed](int64_t u) { return listed[u]; },
                                                    now, now_delta, counts);
    rows.will_push(count);
    if (!close_iteration(counts, lanes, t, n_steps, flips)) return zero_after(t, lanes, n_steps, flips);
    n_units = t + 1 < n_steps ? units_to_decide(pat.by_row, now, count, mark.data(), units.data()) : 0;
    const bool all_next = n_units < 0;  // the next step decides every unit: it pushes these
    pending = all_next ? count : 0;
    if (!all_next) push_units(pat.by_row, rows, now, now_delta, count, 0, n, st.field);
  }
}

template <typename T>
void sync_steps_lanes(const T* values, const Pattern& pat, const T* diag, int64_t n_steps,
                      int64_t lanes, LaneBlockState& st, int32_t* flips, double* delta,
                      int32_t* changed) {
  const int64_t n = pat.by_col.n_outer;
  sync_steps_lanes(values, pat, diag, n_steps, lanes, st, flips, delta, changed,
                   [&](const PushValues<T>& rows, const int32_t* pushes, const double* deltas, int64_t pending,
                       int32_t* c, double* d, LaneCounts& counts) {
                     push_units(pat.by_row, rows, pushes, deltas, pending, 0, n, st.field);
                     return decide_units(st, diag, 0, n, c, d, counts);
                   });
}

// Writes units [i0, i1) of a block's final states and total local fields (field + diag * s)
// back into (B, N) rows (of length n). Kept out of line: inlined beside the dynamics, its loops
// compiled several times slower.
template <typename T>
__attribute__((noinline)) void unpack_lane_block(const LaneBlockState& st, const T* diag, int64_t i0,
                                                 int64_t i1, int64_t n, int64_t lanes, T* s_out,
                                                 T* fields_out) {
  double total[4 * kLanes];
  for (int64_t i = i0; i < i1; i += 4) {
    const int64_t columns = std::min<int64_t>(4, i1 - i);
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

}  // namespace DARNAX_ISA
}  // namespace darnax
