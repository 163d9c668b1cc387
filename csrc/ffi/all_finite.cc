// XLA FFI handler: whether each of its float arrays holds only finite values.
#include <string>

#include "ffi/guard.h"
#include "kernels/table.h"

namespace darnax {

static ffi::Error AllFiniteImpl(ffi::RemainingArgs arrays, ffi::Dictionary attrs,
                                ffi::Result<ffi::Buffer<ffi::DataType::PRED>> out) {
  if (const std::string bad = check_no_attrs("all_finite", attrs); !bad.empty()) return invalid(bad);
  const int64_t n = static_cast<int64_t>(arrays.size());
  const std::string err = check_shape(out->dimensions(), "out", {n});
  if (!err.empty()) return invalid(err);
  bool* flags = out->typed_data();
  for (int64_t i = 0; i < n; ++i) {
    const ffi::ErrorOr<ffi::AnyBuffer> a = arrays.get<ffi::AnyBuffer>(static_cast<size_t>(i));
    if (!a.has_value()) return invalid("arrays[" + std::to_string(i) + "]: " + a.error().message());
    const std::string name = "arrays[" + std::to_string(i) + "]";
    const ffi::Error done = dispatch_float(a->element_type(), name.c_str(), [&](auto zero) {
      using T = decltype(zero);
      flags[i] = kernels<T>().all_finite(a->typed_data<T>(), static_cast<int64_t>(a->element_count()));
      return ffi::Error::Success();
    });
    if (done.failure()) return done;
  }
  return ffi::Error::Success();
}

// Target names, for the errors of the exception barrier (ffi/guard.h).
static constexpr char kAllFinite[] = "darnax_all_finite";

XLA_FFI_DEFINE_HANDLER_SYMBOL(AllFinite, (guarded<kAllFinite, AllFiniteImpl>),
                              ffi::Ffi::Bind()
                                  .RemainingArgs()                                // the arrays
                                  .Attrs<ffi::Dictionary>()                       // none allowed
                                  .Ret<ffi::Buffer<ffi::DataType::PRED>>()        // out (n_arrays,)
);

}  // namespace darnax
