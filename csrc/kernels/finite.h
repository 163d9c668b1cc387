// Whether a float array holds only finite values (no NaN, no infinity).
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

namespace darnax {
inline namespace DARNAX_ISA {

// True when no entry's exponent bits are all ones (a NaN or an infinity): integer operations
// that vectorise into one pass (XLA's float reductions for the same test ran 4-8x slower:
// bench/RESULTS.md, section 28).
template <typename T>
bool all_finite(const T* x, int64_t n) {
  using Bits = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  constexpr Bits kExponent = sizeof(T) == 4 ? Bits(0x7f800000u) : Bits(0x7ff0000000000000ull);
  Bits bad = 0;
  for (int64_t i = 0; i < n; ++i) {
    Bits b;
    std::memcpy(&b, x + i, sizeof(b));
    bad |= static_cast<Bits>((b & kExponent) == kExponent);
  }
  return bad == 0;
}

}  // namespace DARNAX_ISA
}  // namespace darnax
