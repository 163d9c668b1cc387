// XLA FFI handler: y = x @ W, W zero off a (d, K) pattern.
#include "ffi/common.h"
#include "kernels/table.h"

namespace darnax {

static ffi::Error SparseMatmulImpl(ffi::AnyBuffer x, ffi::AnyBuffer values, IndexBuffer col_ptr,
                                   IndexBuffer row_idx, ffi::Result<ffi::AnyBuffer> out) {
  const auto xd = x.dimensions();
  if (xd.size() != 2) return invalid("x: expected rank 2 (B, d), got " + shape_str(xd));
  std::string err = check_index_buffers(col_ptr, row_idx, "col_ptr/row_idx");
  if (!err.empty()) return invalid(err);
  const int64_t batch = xd[0], d = xd[1];
  const Compressed w = compressed(col_ptr, row_idx, d);
  err = check_shape(values.dimensions(), "values", {w.nnz});
  if (err.empty()) err = check_shape(out->dimensions(), "out", {batch, w.n_outer});
  if (err.empty()) err = check_compressed(w, "col_ptr/row_idx");
  if (!err.empty()) return invalid(err);
  if (values.element_type() != x.element_type() || out->element_type() != x.element_type())
    return invalid("x, values and out must share one dtype");
  return dispatch_float(x.element_type(), "x", [&](auto zero) {
    using T = decltype(zero);
    kernels<T>().sparse_matmul(x.typed_data<T>(), batch, values.typed_data<T>(), w, out->typed_data<T>());
    return ffi::Error::Success();
  });
}

XLA_FFI_DEFINE_HANDLER_SYMBOL(SparseMatmul, SparseMatmulImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::AnyBuffer>()  // x (B, d)
                                  .Arg<ffi::AnyBuffer>()  // values (nnz,)
                                  .Arg<IndexBuffer>()     // col_ptr (K + 1,)
                                  .Arg<IndexBuffer>()     // row_idx (nnz,)
                                  .Ret<ffi::AnyBuffer>()  // out (B, K)
);

}  // namespace darnax
