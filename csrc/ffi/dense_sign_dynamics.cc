// XLA FFI handler: asynchronous sweeps of a +-1 layer with dense (N, N) couplings.
#include "ffi/guard.h"
#include "kernels/orders.h"
#include "kernels/table.h"

namespace darnax {

static ffi::Error DenseAsyncSignSweepsImpl(ffi::AnyBuffer h_ext, ffi::AnyBuffer couplings,
                                           ffi::AnyBuffer s0, IndexBuffer order,
                                           int64_t n_sweeps, ffi::Result<ffi::AnyBuffer> s_out,
                                           ffi::Result<IndexBuffer> flips,
                                           ffi::Result<ffi::AnyBuffer> fields) {
  if (n_sweeps < 0)
    return invalid("the number of sweeps must be >= 0, got " + std::to_string(n_sweeps));
  const auto hd = h_ext.dimensions();
  if (hd.size() != 2) return invalid("h_ext: expected rank 2 (B, N), got " + shape_str(hd));
  const int64_t batch = hd[0], n = hd[1];
  std::string err = check_shape(couplings.dimensions(), "couplings", {n, n});
  if (err.empty()) err = check_shape(s0.dimensions(), "s0", {batch, n});
  if (err.empty()) err = check_shape(s_out->dimensions(), "states", {batch, n});
  if (err.empty()) err = check_shape(flips->dimensions(), "flips", {batch, n_sweeps});
  if (err.empty()) err = check_shape(fields->dimensions(), "fields", {batch, n});
  if (!err.empty()) return invalid(err);
  const auto t = h_ext.element_type();
  if (couplings.element_type() != t || s0.element_type() != t || s_out->element_type() != t ||
      fields->element_type() != t)
    return invalid("h_ext, couplings, s0 and the returned states and fields must share one dtype");
  const auto od = order.dimensions();
  OrderLayout layout;
  err = check_orders(order.typed_data(), std::vector<int64_t>(od.begin(), od.end()), batch, n,
                     n_sweeps, layout);
  if (!err.empty()) return invalid(err);
  return dispatch_float(t, "h_ext", [&](auto zero) {
    using T = decltype(zero);
    kernels<T>().dense_async_sign_sweeps(h_ext.typed_data<T>(), couplings.typed_data<T>(),
                                         s0.typed_data<T>(), order.typed_data(), layout.shared,
                                         layout.sweeps, batch, n, n_sweeps, s_out->typed_data<T>(),
                                         flips->typed_data(), fields->typed_data<T>());
    return ffi::Error::Success();
  });
}

// Target names, for the errors of the exception barrier (ffi/guard.h).
static constexpr char kDenseAsyncSignSweeps[] = "darnax_dense_async_sign_sweeps";

XLA_FFI_DEFINE_HANDLER_SYMBOL(
    DenseAsyncSignSweeps, (guarded<kDenseAsyncSignSweeps, DenseAsyncSignSweepsImpl>),
    ffi::Ffi::Bind()
        .Arg<ffi::AnyBuffer>()   // h_ext (B, N): field from outside the layer
        .Arg<ffi::AnyBuffer>()   // couplings (N, N): J, diagonal = self couplings
        .Arg<ffi::AnyBuffer>()   // s0 (B, N): initial states
        .Arg<IndexBuffer>()      // order (1 or B, [n_sweeps,] N)
        .Attr<int64_t>("n_sweeps")
        .Ret<ffi::AnyBuffer>()   // states (B, N)
        .Ret<IndexBuffer>()      // flips (B, n_sweeps)
        .Ret<ffi::AnyBuffer>()   // fields (B, N): final h_ext + s @ J
);

}  // namespace darnax
