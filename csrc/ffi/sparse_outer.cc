// XLA FFI handler: out[p] = sum_b x[b, i_p] e[b, k_p] on a (d, K) pattern.
#include "ffi/common.h"
#include "kernels/table.h"

namespace darnax {

static ffi::Error SparseOuterImpl(ffi::AnyBuffer x, ffi::AnyBuffer e, IndexBuffer col_ptr,
                                  IndexBuffer row_idx, ffi::Result<ffi::AnyBuffer> out) {
  const auto xd = x.dimensions();
  const auto ed = e.dimensions();
  if (xd.size() != 2) return invalid("x: expected rank 2 (B, d), got " + shape_str(xd));
  std::string err = check_index_buffers(col_ptr, row_idx, "col_ptr/row_idx");
  if (!err.empty()) return invalid(err);
  const Compressed w = compressed(col_ptr, row_idx, xd[1]);
  err = check_shape(ed, "e", {xd[0], w.n_outer});
  if (err.empty()) err = check_shape(out->dimensions(), "out", {w.nnz});
  if (err.empty()) err = check_compressed(w, "col_ptr/row_idx");
  if (!err.empty()) return invalid(err);
  if (e.element_type() != x.element_type() || out->element_type() != x.element_type())
    return invalid("x, e and out must share one dtype");
  return dispatch_float(x.element_type(), "x", [&](auto zero) {
    using T = decltype(zero);
    kernels<T>().sparse_outer(x.typed_data<T>(), e.typed_data<T>(), xd[0], w, out->typed_data<T>());
    return ffi::Error::Success();
  });
}

XLA_FFI_DEFINE_HANDLER_SYMBOL(SparseOuter, SparseOuterImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::AnyBuffer>()  // x (B, d)
                                  .Arg<ffi::AnyBuffer>()  // e (B, K)
                                  .Arg<IndexBuffer>()     // col_ptr (K + 1,)
                                  .Arg<IndexBuffer>()     // row_idx (nnz,)
                                  .Ret<ffi::AnyBuffer>()  // out (nnz,)
);

}  // namespace darnax
