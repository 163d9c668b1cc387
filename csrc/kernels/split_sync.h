// Synchronous steps of one lane block with its units split across the pool's threads, for a
// layer too wide for one thread when the batch has fewer lane blocks than threads (B = 16 is
// one block: at 100,000 units it would otherwise run on one thread).
//
// The units are cut into contiguous ranges, one per chunk. A decision reads only its own unit's
// field and state, so each chunk decides its own units and lists those that changed. Every
// chunk then applies the pushes of all listed units, in ascending unit order as the one-thread
// kernel does, but only to the fields of its own units (a row's entries are sorted by column,
// so its part in a range is found by binary search). Each field thus receives the same additions
// in the same order as on one thread: results are bitwise equal for any number of threads or
// chunks. One pool job per step (the end of a job is the barrier): a chunk pushes the previous
// step's changes into its fields, then decides its units for this step. The lists of changes
// alternate between two buffers, since a chunk may list this step's changes while another still
// reads the previous step's. Narrower layers (from 1,000 units at B = 16) split only their steps
// of all units and their packing (sync_steps_shared).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/lanes.h"
#include "kernels/parallel.h"
#include "kernels/pattern.h"
#include "kernels/sign_lanes.h"
#include "kernels/sparse_matmul.h"

namespace darnax {
inline namespace DARNAX_ISA {

// Least work of one step of a lane block per chunk, kLanes * (N + nnz) (lane decisions, and pushes
// as if every unit flipped), for splitting its units across threads: 2 chunks from 8e6 (50,000
// units at fan-in 20), where a busy second CPU costs a split ~20% and a free one gains ~1.7x, and
// a step is long beside a preemption. Measured on 2 vCPUs, 5 steps at B = 16, split or not on 2
// threads: with the other CPU free the split paid from 2,000 units (fan-in 20: 0.74 vs 1.01 ms;
// 50,000, fan-in 20: 28 vs 47 ms), but with it busy every step's barrier waits for a preempted
// thread: 5,000 units (fan-in 30) 3.5 vs 2.8 ms, p75 22 vs 6.7 ms; 50,000 (fan-in 20) 53 vs 43 ms;
// 100,000 (fan-in 100) 442 vs 473 ms. A split also does more work in all (each chunk reads every
// listed change and searches its part of the row): as 2 chunks on one thread, +17% at 2.5e6, +9%
// at 6.7e6, +7% at 1.7e7, none from 3.2e7 up (smaller fields per chunk).
constexpr double kMinSplitStepWork = 4e6;

// Chunks to split the units of each of `runs` lane blocks into, for `work` per block and at least
// `min_work` per chunk: 1 (no split) when the blocks already keep every thread busy (runs >=
// threads) or the work is too small.
inline int64_t block_chunks(double work, double min_work, int64_t runs) {
  const int64_t by_work = static_cast<int64_t>(std::min(work / min_work, 1e9));
  if (runs == 0 || by_work < 2) return 1;  // too small to split: no need to read the CPU mask
  const int64_t threads = num_threads();
  if (runs >= threads) return 1;
  return std::clamp<int64_t>(by_work, 1, threads);
}

// Chunks for sync_steps_split: by a step's work.
inline int64_t unit_chunks(const Pattern& pat, int64_t runs) {
  const double step = static_cast<double>(kLanes) * static_cast<double>(pat.by_col.n_outer + pat.by_col.nnz);
  return block_chunks(step, kMinSplitStepWork, runs);
}

// Bounds of `chunks` contiguous unit ranges of about equal work, unit k costing its decision
// plus the pushes its field can receive (its in-degree): chunk c owns [bounds[c], bounds[c + 1]).
inline std::vector<int64_t> unit_ranges(const Compressed& by_col, int64_t chunks) {
  const int64_t n = by_col.n_outer;
  std::vector<int64_t> bounds(static_cast<size_t>(chunks + 1), n);
  bounds[0] = 0;
  int64_t k = 0;
  for (int64_t c = 1; c < chunks; ++c) {
    const double target = static_cast<double>(n + by_col.nnz) * static_cast<double>(c) / static_cast<double>(chunks);
    while (k < n && static_cast<double>(k + by_col.ptr[k]) < target) ++k;
    bounds[c] = k;
  }
  return bounds;
}

// sync_steps_lanes on one block of `lanes` samples, its units split into `chunks` ranges: s0,
// s_out and fields_out point at the block's first (N,) row, flips at its (lanes, n_steps) rows;
// field: the block's initial fields (N, kLanes). Also packs the states and writes the outputs,
// each chunk for its own units.
template <typename T>
void sync_steps_split(const T* values, const Pattern& pat, const T* diag, int64_t n_steps,
                      int64_t lanes, int64_t chunks, const T* s0, double* field, T* s_out,
                      T* fields_out, int32_t* flips) {
  const int64_t n = pat.by_col.n_outer;
  const std::vector<int64_t> bounds = unit_ranges(pat.by_col, chunks);
  Scratch<double> s(n * kLanes), delta(2 * n * kLanes);  // lists of parity p: from p * n on,
  Scratch<int32_t> changed(2 * n);                       // chunk c's from p * n + bounds[c]
  std::vector<int64_t> listed(static_cast<size_t>(2 * chunks), 0);  // [p * chunks + c]
  std::vector<LaneCounts> counts(static_cast<size_t>(chunks));
  LaneBlockState st(field, s.data(), lanes);
  PushValues<T> rows(values, pat);
  bool pending = false;  // the changes of step t - 1 are listed, not yet pushed
  for (int64_t t = 0;;) {
    const bool deciding = t < n_steps;
    const int64_t now = t % 2, before = 1 - now;
    ThreadPool::instance().run(chunks, [&](int64_t c) {
      const int64_t k0 = bounds[c], k1 = bounds[c + 1];
      if (t == 0) pack_lanes_into(s0 + k0, lanes, k1 - k0, n, st.s + k0 * kLanes);
      for (int64_t from = 0; pending && from < chunks; ++from) {
        const int64_t first = before * n + bounds[from];
        push_units(pat.by_row, rows, changed.data() + first, delta.data() + first * kLanes,
                   listed[before * chunks + from], k0, k1, st.field);
      }
      if (deciding) {
        const int64_t first = now * n + k0;
        listed[now * chunks + c] = decide_units(st, diag, k0, k1, changed.data() + first,
                                                delta.data() + first * kLanes, counts[c]);
      } else {
        unpack_lane_block(st, diag, k0, k1, n, lanes, s_out, fields_out);
      }
    });
    if (!deciding) return;
    LaneCounts total;
    int64_t count = 0;
    for (int64_t c = 0; c < chunks; ++c) {
      count += listed[now * chunks + c];
      for (int64_t q = 0; q < kDVec; ++q) total.neg[q] += counts[c].neg[q];
      counts[c] = LaneCounts{};
    }
    pending = close_iteration(total, lanes, t, n_steps, flips);
    if (pending) {
      rows.will_push(count);  // between jobs: a copy it makes splits across the pool itself
      ++t;
    } else {  // a fixed point: the last job only writes the outputs
      zero_after(t, lanes, n_steps, flips);
      t = n_steps;
    }
  }
}

// Least decisions of a step of all units, kLanes * N, per chunk of sync_steps_shared: 2 chunks
// from 1,000 units at B = 16. On 2 free CPUs the seeds' 2,000-unit layer trained 1.12x faster with
// the split (fit_epoch, Fashion-MNIST); random couplings, where half the units flip and the pushes
// on one thread dominate, gained 0-16% at 2,000 units and nothing at 1,000.
constexpr double kMinSharedDecisions = 8e3;

// Chunks for sync_steps_shared: by the decisions of a step of all units.
inline int64_t shared_chunks(const Pattern& pat, int64_t runs) {
  return block_chunks(static_cast<double>(kLanes) * static_cast<double>(pat.by_col.n_outer), kMinSharedDecisions, runs);
}

// sync_steps_lanes on one block (arguments as sync_steps_split's) for a layer too narrow for
// sync_steps_split, which pays a pool job per step: here only the work that scales with N is
// split into `chunks` unit ranges, namely packing the states, the steps in which every unit
// decides (the first, and any whose changes reach more than N / 4 units) and writing the
// outputs, with the pushes that such a step waits for (each chunk into its own units' fields,
// as sync_steps_split). Each chunk lists the changes of its range at its range's offset; the
// lists are then moved together in range order, which is the list one thread makes. The steps
// that decide a few listed units, and the pushes before them, stay on this thread. Same
// results, bit for bit. With h_ext (the block's (lanes, N) rows) the initial fields are summed
// here too, each chunk its own units' columns in the first job (column_sums_range, the sums of
// column_sums), so that the thread that decides a unit first has its field in its own cache
// and the call makes one pool job fewer (the seeds' phases 3% faster per call, fit_epoch 2%:
// bench/RESULTS.md, 30); without it `field` holds them already.
template <typename T>
void sync_steps_shared(const T* values, const Pattern& pat, const T* diag, int64_t n_steps,
                       int64_t lanes, int64_t chunks, const T* s0, double* field, T* s_out,
                       T* fields_out, int32_t* flips, const T* h_ext = nullptr) {
  const int64_t n = pat.by_col.n_outer;
  const std::vector<int64_t> bounds = unit_ranges(pat.by_col, chunks);
  Scratch<double> s(n * kLanes), delta(2 * n * kLanes);
  Scratch<int32_t> changed(2 * n);
  std::vector<int64_t> listed(static_cast<size_t>(chunks));
  std::vector<LaneCounts> counts(static_cast<size_t>(chunks));
  LaneBlockState st(field, s.data(), lanes);
  bool packed = false;
  const auto prepare = [&](int64_t k0, int64_t k1) {
    pack_lanes_into(s0 + k0, lanes, k1 - k0, n, st.s + k0 * kLanes);
    if (h_ext)
      column_sums_range<T>(s0, lanes, values, pat.by_col, h_ext, k0, k1,
                           [&](int64_t, int64_t k, int64_t columns, const T* acc) {
                             widen_fields(acc, columns, field + k * kLanes);
                           });
  };
  const auto decide_all = [&](const PushValues<T>& rows, const int32_t* pushes, const double* pushed_deltas,
                              int64_t pending, int32_t* changes, double* deltas, LaneCounts& total) {
    ThreadPool::instance().run(chunks, [&](int64_t c) {
      const int64_t k0 = bounds[c], k1 = bounds[c + 1];
      if (!packed) prepare(k0, k1);
      push_units(pat.by_row, rows, pushes, pushed_deltas, pending, k0, k1, st.field);
      counts[c] = LaneCounts{};
      listed[c] = decide_units(st, diag, k0, k1, changes + k0, deltas + k0 * kLanes, counts[c]);
    });
    packed = true;
    int64_t count = 0;
    for (int64_t c = 0; c < chunks; ++c) {  // count <= bounds[c]: moves never reach a later range
      std::memmove(changes + count, changes + bounds[c], sizeof(int32_t) * static_cast<size_t>(listed[c]));
      std::memmove(deltas + count * kLanes, deltas + bounds[c] * kLanes,
                   sizeof(double) * static_cast<size_t>(listed[c] * kLanes));
      count += listed[c];
      for (int64_t q = 0; q < kDVec; ++q) total.neg[q] += counts[c].neg[q];
    }
    return count;
  };
  sync_steps_lanes(values, pat, diag, n_steps, lanes, st, flips, delta.data(), changed.data(), decide_all);
  ThreadPool::instance().run(chunks, [&](int64_t c) {
    const int64_t k0 = bounds[c], k1 = bounds[c + 1];
    if (!packed) prepare(k0, k1);  // no step ran
    unpack_lane_block(st, diag, k0, k1, n, lanes, s_out, fields_out);
  });
}

}  // namespace DARNAX_ISA
}  // namespace darnax
