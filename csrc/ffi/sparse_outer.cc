// XLA FFI handlers: out[p] = sum_b x[b, i_p] e[b, k_p] on a (d, K) pattern named by its store key.
#include "ffi/guard.h"
#include "ffi/pattern_attrs.h"
#include "ffi/product_checks.h"
#include "kernels/table.h"

namespace darnax {

static ffi::Error SparseOuterImpl(ffi::AnyBuffer x, ffi::AnyBuffer e, int64_t key,
                                  CheckedPattern* checked, ffi::Result<ffi::AnyBuffer> out) {
  const StoredPattern* pattern = nullptr;
  const std::string err = check_outer(checked, key, x, e, *out, pattern);
  if (!err.empty()) return invalid(err);
  const Compressed w = pattern->by_col();
  const auto xd = x.dimensions();
  return dispatch_float(x.element_type(), "x", [&](auto zero) {
    using T = decltype(zero);
    kernels<T>().sparse_outer(x.typed_data<T>(), e.typed_data<T>(), xd[0], w, out->typed_data<T>());
    return ffi::Error::Success();
  });
}

// Target names, for the errors of the exception barrier (ffi/guard.h).
static constexpr char kSparseOuter[] = "darnax_sparse_outer";
static constexpr char kSparseOuterInstantiate[] = "darnax_sparse_outer (instantiation)";

XLA_FFI_DEFINE_HANDLER_SYMBOL(SparseOuterInstantiate, (guarded<kSparseOuterInstantiate, find_by_col>),
                              bind_pattern(ffi::Ffi::BindInstantiate()));

XLA_FFI_DEFINE_HANDLER_SYMBOL(SparseOuter, (guarded<kSparseOuter, SparseOuterImpl>),
                              bind_pattern(ffi::Ffi::Bind()
                                               .Arg<ffi::AnyBuffer>()   // x (B, d)
                                               .Arg<ffi::AnyBuffer>())  // e (B, K)
                                  .Ctx<ffi::State<CheckedPattern>>()
                                  .Ret<ffi::AnyBuffer>()  // out (nnz,)
);

}  // namespace darnax
