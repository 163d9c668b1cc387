// XLA FFI handler: one random permutation of 0..n-1 per row of uint32 random words.
#include <climits>

#include "ffi/guard.h"
#include "kernels/shuffle.h"

namespace darnax {

static ffi::Error RandomPermutationsImpl(ffi::Buffer<ffi::DataType::U32> bits,
                                         ffi::Dictionary attrs, ffi::Result<IndexBuffer> out) {
  if (const std::string bad = check_no_attrs("random_permutations", attrs); !bad.empty()) return invalid(bad);
  const auto bd = bits.dimensions();
  if (bd.size() != 2) return invalid("bits: expected rank 2 (rows, n), got " + shape_str(bd));
  if (bd[1] > INT32_MAX) return invalid("bits: n must fit int32, got " + std::to_string(bd[1]));
  const std::string err = check_shape(out->dimensions(), "out", {bd[0], bd[1]});
  if (!err.empty()) return invalid(err);
  random_permutations(bits.typed_data(), bd[0], bd[1], out->typed_data());
  return ffi::Error::Success();
}

// Target names, for the errors of the exception barrier (ffi/guard.h).
static constexpr char kRandomPermutations[] = "darnax_random_permutations";

XLA_FFI_DEFINE_HANDLER_SYMBOL(RandomPermutations, (guarded<kRandomPermutations, RandomPermutationsImpl>),
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::DataType::U32>>()  // bits (rows, n)
                                  .Attrs<ffi::Dictionary>()                // none allowed
                                  .Ret<IndexBuffer>()                      // out (rows, n)
);

}  // namespace darnax
