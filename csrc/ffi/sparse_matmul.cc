// XLA FFI handlers: y = x @ W, W zero off a (d, K) pattern named by its store key.
#include "ffi/guard.h"
#include "ffi/pattern_attrs.h"
#include "ffi/product_checks.h"
#include "kernels/table.h"

namespace darnax {

static ffi::Error SparseMatmulImpl(ffi::AnyBuffer x, ffi::AnyBuffer values, int64_t key,
                                   CheckedPattern* checked, ffi::Result<ffi::AnyBuffer> out) {
  const StoredPattern* pattern = nullptr;
  const std::string err = check_matmul(checked, key, x, values, *out, pattern);
  if (!err.empty()) return invalid(err);
  const Compressed w = pattern->by_col();
  const int64_t batch = x.dimensions()[0];
  return dispatch_float(x.element_type(), "x", [&](auto zero) {
    using T = decltype(zero);
    kernels<T>().sparse_matmul(x.typed_data<T>(), batch, values.typed_data<T>(), w, out->typed_data<T>());
    return ffi::Error::Success();
  });
}

// Target names, for the errors of the exception barrier (ffi/guard.h).
static constexpr char kSparseMatmul[] = "darnax_sparse_matmul";
static constexpr char kSparseMatmulInstantiate[] = "darnax_sparse_matmul (instantiation)";

XLA_FFI_DEFINE_HANDLER_SYMBOL(SparseMatmulInstantiate, (guarded<kSparseMatmulInstantiate, find_by_col>),
                              bind_pattern(ffi::Ffi::BindInstantiate()));

XLA_FFI_DEFINE_HANDLER_SYMBOL(SparseMatmul, (guarded<kSparseMatmul, SparseMatmulImpl>),
                              bind_pattern(ffi::Ffi::Bind()
                                               .Arg<ffi::AnyBuffer>()   // x (B, d)
                                               .Arg<ffi::AnyBuffer>())  // values (nnz,)
                                  .Ctx<ffi::State<CheckedPattern>>()
                                  .Ret<ffi::AnyBuffer>()  // out (B, K)
);

}  // namespace darnax
