// The batch entry points of the sign dynamics: a batch's initial fields, then its lane blocks
// (sign_lanes.h; split by units across threads when they are fewer than the threads and wide
// enough, split_sync.h) and its lone samples (sign_dynamics.h), written back as (B, N) rows.
#pragma once

#include <algorithm>
#include <cstdint>

#include "kernels/lanes.h"
#include "kernels/parallel.h"
#include "kernels/pattern.h"
#include "kernels/sign_dynamics.h"
#include "kernels/sign_lanes.h"
#include "kernels/sparse_matmul.h"
#include "kernels/split_sync.h"

namespace darnax {
inline namespace DARNAX_ISA {

// Lane blocks pay off from a few samples up: a block with fewer runs its samples one at a time,
// which does less work than kLanes lanes of which most hold no sample.
constexpr int64_t kMinLaneBatch = 4;

// The leading lane blocks of a batch that run in lanes (none when !in_lanes).
inline int64_t lane_runs(int64_t batch, bool in_lanes) {
  const int64_t rest = batch % kLanes;
  return !in_lanes ? 0 : (rest == 0 || rest >= kMinLaneBatch ? lane_blocks(batch) : batch / kLanes);
}

// Runs one lane block on the calling thread: packs samples b0 .. b0 + lanes - 1 of s0 beside
// their fields, runs `dynamics(state)`, writes their states and total fields back.
template <typename T, typename Dynamics>
void run_lane_block(const T* diag, const T* s0, int64_t n, int64_t b0, int64_t lanes,
                    double* field, T* s_out, T* fields_out, Dynamics&& dynamics) {
  Scratch<double> s(n * kLanes);
  pack_lanes_into(s0 + b0 * n, lanes, n, n, s.data());
  LaneBlockState st(field, s.data(), lanes);
  dynamics(st);
  unpack_lane_block(st, diag, 0, n, n, lanes, s_out + b0 * n, fields_out + b0 * n);
}

// Runs the dynamics of a batch, row-major (B, N) inputs and outputs, flips (B, n_iter): first
// field = h_ext + s0 @ W (summed in T by lane blocks, kept in float64), then every lane block
// that holds at least kMinLaneBatch samples runs in lanes, `block_fn(b0, lanes, field of the
// block)` (which writes the block's outputs), and the samples of the other blocks (every block
// when !in_lanes) one at a time, `sample_fn(b, row_values, s, field, flips of b)` on one row
// each. Blocks and samples are split across threads, except with `blocks_split_units`: the
// blocks then run one after another on the calling thread, each splitting its units across the
// threads itself. Either way a sample's result is the same, bit for bit.
template <typename T, typename BlockFn, typename SampleFn>
void run_layer(const T* h_ext, const T* values, const Pattern& pat, const T* diag, const T* s0,
               int64_t batch, int64_t n_iter, bool in_lanes, bool blocks_split_units, T* s_out,
               int32_t* flips, T* fields_out, BlockFn&& block_fn, SampleFn&& sample_fn) {
  const int64_t n = pat.by_col.n_outer, runs = lane_runs(batch, in_lanes);
  const int64_t first_alone = std::min(batch, runs * kLanes), alone = batch - first_alone;
  Scratch<double> field(lane_blocks(batch) * n * kLanes);
  column_sums<T>(s0, batch, values, pat.by_col, h_ext,
                 [&](int64_t blk, int64_t k, int64_t columns, const T* acc) {
                   widen_fields(acc, columns, field.data() + (blk * n + k) * kLanes);
                 });
  const Scratch<T> row_values = alone > 0 ? values_by_row(values, pat) : Scratch<T>(0);
  const auto run_block = [&](int64_t blk) {
    const int64_t b0 = blk * kLanes;
    block_fn(b0, std::min(kLanes, batch - b0), field.data() + blk * n * kLanes);
  };
  const int64_t pooled_blocks = blocks_split_units ? 0 : runs;
  for (int64_t blk = pooled_blocks; blk < runs; ++blk) run_block(blk);
  const double cost = layer_cost(pat, n_iter) * static_cast<double>(pooled_blocks * kLanes + alone);
  const int64_t items = pooled_blocks + alone;
  parallel_for(items, cost / static_cast<double>(std::max<int64_t>(items, 1)), kMinWorkPerThread,
               [&](int64_t i0, int64_t i1) {
    Scratch<double> row(alone > 0 ? n : 0);
    for (int64_t item = i0; item < i1; ++item) {
      if (item < pooled_blocks) {
        run_block(item);
        continue;
      }
      const int64_t b = first_alone + item - pooled_blocks;
      const double* lane = field.data() + (b / kLanes) * n * kLanes + b % kLanes;
      for (int64_t i = 0; i < n; ++i) row.data()[i] = lane[i * kLanes];
      std::copy(s0 + b * n, s0 + (b + 1) * n, s_out + b * n);
      sample_fn(b, row_values.data(), s_out + b * n, row.data(), flips + b * n_iter);
      finish_sample(row.data(), diag, s_out + b * n, n, fields_out + b * n);
    }
  });
}

// Whether every entry is zero (NaN is not); stops at the first that is not, so a state of +-1
// costs one comparison.
template <typename T>
bool all_zero(const T* s, int64_t count) {
  for (int64_t j = 0; j < count; ++j)
    if (!(s[j] == T(0))) return false;
  return true;
}

// The batch entry points: sync_sign_steps and async_sign_sweeps (sign_dynamics.h) on a batch.
// A batch of states that are all zero (as right after state.init) takes its first step here:
// every field is then h_ext (no self-message) and every unit changes, so that step is
// sign(h_ext) (ties to +1, as decide_lanes) with N flips per sample; the other steps start from
// it, their fields summed once from those states instead of pushed row by row for every unit.
// When every sample is in a lane block and the blocks share their steps across threads
// (sync_steps_shared), each block sums its own fields inside its first pool job; otherwise
// run_layer sums all fields first.
template <typename T>
void sync_sign_steps_batch(const T* h_ext, const T* values, const Pattern& pat, const T* diag,
                           const T* s0, int64_t batch, int64_t n_steps, T* s, int32_t* flips,
                           T* fields_out) {
  const int64_t n = pat.by_col.n_outer;
  if (n_steps > 0 && all_zero(s0, batch * n)) {
    Scratch<T> first(batch * n);
    for (int64_t j = 0; j < batch * n; ++j) first.data()[j] = h_ext[j] >= T(0) ? T(1) : T(-1);
    Scratch<int32_t> rest(batch * (n_steps - 1));
    sync_sign_steps_batch(h_ext, values, pat, diag, first.data(), batch, n_steps - 1, s, rest.data(), fields_out);
    for (int64_t b = 0; b < batch; ++b) {
      flips[b * n_steps] = static_cast<int32_t>(n);
      std::copy(rest.data() + b * (n_steps - 1), rest.data() + (b + 1) * (n_steps - 1), flips + b * n_steps + 1);
    }
    return;
  }
  const int64_t runs = lane_runs(batch, true), chunks = unit_chunks(pat, runs);
  const int64_t shared = chunks > 1 ? 1 : shared_chunks(pat, runs);
  if (shared > 1 && runs * kLanes >= batch) {  // every sample in a block: each sums its own fields
    Scratch<double> field(n * kLanes);
    for (int64_t b0 = 0; b0 < batch; b0 += kLanes)
      sync_steps_shared(values, pat, diag, n_steps, std::min(kLanes, batch - b0), shared, s0 + b0 * n,
                        field.data(), s + b0 * n, fields_out + b0 * n, flips + b0 * n_steps, h_ext + b0 * n);
    return;
  }
  run_layer(h_ext, values, pat, diag, s0, batch, n_steps, true, chunks > 1 || shared > 1, s, flips, fields_out,
            [&](int64_t b0, int64_t lanes, double* field) {
              if (chunks > 1)
                return sync_steps_split(values, pat, diag, n_steps, lanes, chunks, s0 + b0 * n,
                                        field, s + b0 * n, fields_out + b0 * n, flips + b0 * n_steps);
              if (shared > 1)
                return sync_steps_shared(values, pat, diag, n_steps, lanes, shared, s0 + b0 * n,
                                         field, s + b0 * n, fields_out + b0 * n, flips + b0 * n_steps);
              run_lane_block(diag, s0, n, b0, lanes, field, s, fields_out, [&](LaneBlockState& st) {
                Scratch<double> delta(2 * n * kLanes);
                Scratch<int32_t> changed(2 * n);
                sync_steps_lanes(values, pat, diag, n_steps, lanes, st, flips + b0 * n_steps,
                                 delta.data(), changed.data());
              });
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
  run_layer(h_ext, values, pat, diag, s0, batch, n_sweeps, order_shared, false, s, flips, fields_out,
            [&](int64_t b0, int64_t lanes, double* field) {
              run_lane_block(diag, s0, n, b0, lanes, field, s, fields_out, [&](LaneBlockState& st) {
                async_sweeps_lanes(values, pat, diag, order, stride, n_sweeps, lanes, st,
                                   flips + b0 * n_sweeps);
              });
            },
            [&](int64_t b, const T* row_values, T* s_b, double* field_b, int32_t* flips_b) {
              const int32_t* own = order + (order_shared ? 0 : b * order_sweeps * n);
              async_sign_sweeps(row_values, pat, diag, own, stride, n_sweeps, s_b, field_b, flips_b);
            });
}

}  // namespace DARNAX_ISA
}  // namespace darnax
