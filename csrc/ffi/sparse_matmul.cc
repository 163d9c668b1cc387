// XLA FFI handlers: y = x @ W, W zero off a (d, K) pattern given as attributes.
#include "ffi/pattern_attrs.h"
#include "kernels/table.h"

namespace darnax {

static ffi::Error SparseMatmulImpl(ffi::AnyBuffer x, ffi::AnyBuffer values, IndexSpan col_ptr,
                                   IndexSpan row_idx, int64_t n_rows, CheckedPattern* checked,
                                   ffi::Result<ffi::AnyBuffer> out) {
  const auto xd = x.dimensions();
  if (xd.size() != 2 || xd[1] != n_rows)
    return invalid("x: expected shape (B, " + std::to_string(n_rows) + "), got " + shape_str(xd));
  Compressed w{};
  std::string err = by_col_view(checked, col_ptr, row_idx, n_rows, w);
  const int64_t batch = xd[0];
  if (err.empty()) err = check_shape(values.dimensions(), "values", {w.nnz});
  if (err.empty()) err = check_shape(out->dimensions(), "out", {batch, w.n_outer});
  if (!err.empty()) return invalid(err);
  if (values.element_type() != x.element_type() || out->element_type() != x.element_type())
    return invalid("x, values and out must share one dtype");
  return dispatch_float(x.element_type(), "x", [&](auto zero) {
    using T = decltype(zero);
    kernels<T>().sparse_matmul(x.typed_data<T>(), batch, values.typed_data<T>(), w, out->typed_data<T>());
    return ffi::Error::Success();
  });
}

XLA_FFI_DEFINE_HANDLER_SYMBOL(SparseMatmulInstantiate, check_by_col_attrs,
                              bind_by_col_attrs(ffi::Ffi::BindInstantiate()));

XLA_FFI_DEFINE_HANDLER_SYMBOL(SparseMatmul, SparseMatmulImpl,
                              bind_by_col_attrs(ffi::Ffi::Bind()
                                                    .Arg<ffi::AnyBuffer>()   // x (B, d)
                                                    .Arg<ffi::AnyBuffer>())  // values (nnz,)
                                  .Ctx<ffi::State<CheckedPattern>>()
                                  .Ret<ffi::AnyBuffer>()  // out (B, K)
);

}  // namespace darnax
