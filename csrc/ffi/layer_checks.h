// The checks of a sign-dynamics call's buffers (shapes, dtypes, the pattern key, the shape of
// the visiting orders), shared by the CPU and CUDA handlers so that both reject the same calls
// with the same messages.
#pragma once

#include <string>

#include "ffi/common.h"
#include "ffi/pattern_attrs.h"

namespace darnax {

// The operands every sign-dynamics call takes, after the contexts `binding` already holds.
template <typename Binding>
auto bind_layer_inputs(Binding binding) {
  return std::move(binding)
      .template Arg<ffi::AnyBuffer>()   // h_ext (B, N): field from outside the layer
      .template Arg<ffi::AnyBuffer>()   // values (nnz,): off-diagonal couplings, column order
      .template Arg<ffi::AnyBuffer>()   // diag (N,): self couplings
      .template Arg<ffi::AnyBuffer>();  // s0 (B, N): initial states
}

// Its state (`State`: the CPU's CheckedPattern or the CUDA one) and its results.
template <typename State, typename Binding>
auto bind_layer_outputs(Binding binding) {
  return std::move(binding)
      .template Ctx<ffi::State<State>>()
      .template Ret<ffi::AnyBuffer>()   // states (B, N)
      .template Ret<IndexBuffer>()      // flips (B, n_iter)
      .template Ret<ffi::AnyBuffer>();  // fields (B, N): final h_ext + s @ J
}

// The buffers and pattern attributes every sign-dynamics call shares.
struct LayerInputs {
  ffi::AnyBuffer h_ext, values, diag, s0;
  int64_t key;
  CheckedPattern* checked;
};

// Checks shapes and dtypes (the pattern was found and n_iter >= 0 checked at instantiation,
// from the same attributes); on success fills `pat`, `batch` and `n`.
inline std::string check_layer(const LayerInputs& in, int64_t n_iter, ffi::AnyBuffer& s_out,
                               IndexBuffer& flips, ffi::AnyBuffer& fields, Pattern& pat,
                               int64_t& batch, int64_t& n) {
  const auto hd = in.h_ext.dimensions();
  if (hd.size() != 2) return "h_ext: expected rank 2 (B, N), got " + shape_str(hd);
  batch = hd[0];
  n = hd[1];
  std::string err;
  const StoredPattern* pattern = pattern_of(in.checked, in.key, err);
  if (pattern == nullptr) return err;
  if (n != pattern->n_cols())
    return "h_ext: expected " + std::to_string(pattern->n_cols()) +
           " units (the pattern's width), got " + std::to_string(n);
  pat = pattern->both();
  err = check_shape(in.values.dimensions(), "values", {pat.by_col.nnz});
  if (err.empty()) err = check_shape(in.diag.dimensions(), "diag", {n});
  if (err.empty()) err = check_shape(in.s0.dimensions(), "s0", {batch, n});
  if (err.empty()) err = check_shape(s_out.dimensions(), "states", {batch, n});
  if (err.empty()) err = check_shape(flips.dimensions(), "flips", {batch, n_iter});
  if (err.empty()) err = check_shape(fields.dimensions(), "fields", {batch, n});
  if (!err.empty()) return err;
  const auto t = in.h_ext.element_type();
  if (in.values.element_type() != t || in.diag.element_type() != t ||
      in.s0.element_type() != t || s_out.element_type() != t || fields.element_type() != t)
    return "h_ext, values, diag, s0 and the returned states and fields must share one dtype";
  return "";
}

// The instantiate stage of both dynamics: n_iter >= 0, and the square pattern found once.
inline CheckedState find_layer_pattern(int64_t key, int64_t n_iter) {
  if (n_iter < 0)
    return ffi::Unexpected(invalid("the number of sweeps/steps must be >= 0, got " + std::to_string(n_iter)));
  return find_square(key);
}

// order: (1 or B, N) or (1 or B, n_sweeps, N); "" on success, with order_sweeps its sweep count
// (1: one order for every sweep).
inline std::string check_order_shape(ffi::Span<const int64_t> od, int64_t batch, int64_t n, int64_t n_sweeps,
                                     int64_t& order_sweeps) {
  order_sweeps = od.size() == 2 ? 1 : (od.size() == 3 ? od[1] : -1);
  if (order_sweeps < 0 || (od[0] != batch && od[0] != 1) || od[od.size() - 1] != n ||
      (order_sweeps != 1 && order_sweeps != n_sweeps))
    return "order: expected shape (1 or " + std::to_string(batch) + ", " + std::to_string(n) + ") or (1 or " +
           std::to_string(batch) + ", " + std::to_string(n_sweeps) + ", " + std::to_string(n) + "), got " +
           shape_str(od);
  return "";
}

}  // namespace darnax
