// XLA FFI handlers: out[p] = sum_b x[b, i_p] e[b, k_p] on a (d, K) pattern given as attributes.
#include "ffi/pattern_attrs.h"
#include "kernels/table.h"

namespace darnax {

static ffi::Error SparseOuterImpl(ffi::AnyBuffer x, ffi::AnyBuffer e, IndexSpan col_ptr,
                                  IndexSpan row_idx, int64_t n_rows, CheckedPattern* checked,
                                  ffi::Result<ffi::AnyBuffer> out) {
  const auto xd = x.dimensions();
  if (xd.size() != 2 || xd[1] != n_rows)
    return invalid("x: expected shape (B, " + std::to_string(n_rows) + "), got " + shape_str(xd));
  Compressed w{};
  std::string err = by_col_view(checked, col_ptr, row_idx, n_rows, w);
  if (err.empty()) err = check_shape(e.dimensions(), "e", {xd[0], w.n_outer});
  if (err.empty()) err = check_shape(out->dimensions(), "out", {w.nnz});
  if (!err.empty()) return invalid(err);
  if (e.element_type() != x.element_type() || out->element_type() != x.element_type())
    return invalid("x, e and out must share one dtype");
  return dispatch_float(x.element_type(), "x", [&](auto zero) {
    using T = decltype(zero);
    kernels<T>().sparse_outer(x.typed_data<T>(), e.typed_data<T>(), xd[0], w, out->typed_data<T>());
    return ffi::Error::Success();
  });
}

XLA_FFI_DEFINE_HANDLER_SYMBOL(SparseOuterInstantiate, check_by_col_attrs,
                              bind_by_col_attrs(ffi::Ffi::BindInstantiate()));

XLA_FFI_DEFINE_HANDLER_SYMBOL(SparseOuter, SparseOuterImpl,
                              bind_by_col_attrs(ffi::Ffi::Bind()
                                                    .Arg<ffi::AnyBuffer>()   // x (B, d)
                                                    .Arg<ffi::AnyBuffer>())  // e (B, K)
                                  .Ctx<ffi::State<CheckedPattern>>()
                                  .Ret<ffi::AnyBuffer>()  // out (nnz,)
);

}  // namespace darnax
