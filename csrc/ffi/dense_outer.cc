// XLA FFI handler: out = x^T e for dense x (B, d) and e (B, K).
#include <string>

#include "ffi/guard.h"
#include "kernels/table.h"

namespace darnax {

static ffi::Error DenseOuterImpl(ffi::AnyBuffer x, ffi::AnyBuffer e, ffi::Dictionary attrs,
                                 ffi::Result<ffi::AnyBuffer> out) {
  if (const std::string bad = check_no_attrs("dense_outer", attrs); !bad.empty()) return invalid(bad);
  const auto xd = x.dimensions(), ed = e.dimensions();
  if (xd.size() != 2) return invalid("x: expected rank 2 (B, d), got " + shape_str(xd));
  if (ed.size() != 2 || ed[0] != xd[0])
    return invalid("e: expected shape (" + std::to_string(xd[0]) + ", K), got " + shape_str(ed));
  const std::string err = check_shape(out->dimensions(), "out", {xd[1], ed[1]});
  if (!err.empty()) return invalid(err);
  if (e.element_type() != x.element_type() || out->element_type() != x.element_type())
    return invalid("x, e and out must share one dtype");
  return dispatch_float(x.element_type(), "x", [&](auto zero) {
    using T = decltype(zero);
    kernels<T>().dense_outer(x.typed_data<T>(), e.typed_data<T>(), xd[0], xd[1], ed[1], out->typed_data<T>());
    return ffi::Error::Success();
  });
}

// Target names, for the errors of the exception barrier (ffi/guard.h).
static constexpr char kDenseOuter[] = "darnax_dense_outer";

XLA_FFI_DEFINE_HANDLER_SYMBOL(DenseOuter, (guarded<kDenseOuter, DenseOuterImpl>),
                              ffi::Ffi::Bind()
                                  .Arg<ffi::AnyBuffer>()     // x (B, d)
                                  .Arg<ffi::AnyBuffer>()     // e (B, K)
                                  .Attrs<ffi::Dictionary>()  // none allowed
                                  .Ret<ffi::AnyBuffer>()     // out (d, K)
);

}  // namespace darnax
