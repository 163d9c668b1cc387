// Random visiting orders: Fisher-Yates shuffles driven by caller-supplied random words, so that
// the randomness (JAX's keys) stays outside the kernel and results are reproducible.
#pragma once

#include <cstdint>

namespace darnax {

// out = a random permutation of 0..n-1: out starts as the identity; for i = n-1 down to 1,
// out[i] is swapped with out[j], j = floor(bits[i] * (i + 1) / 2^32) (Lemire's multiply-shift:
// each j in [0, i] has probability within (i + 1) / 2^32 of 1 / (i + 1)). bits[0] is unused.
inline void random_permutation(const uint32_t* bits, int64_t n, int32_t* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<int32_t>(i);
  for (int64_t i = n - 1; i >= 1; --i) {
    const int64_t j = static_cast<int64_t>(
        (static_cast<uint64_t>(bits[i]) * static_cast<uint64_t>(i + 1)) >> 32);
    const int32_t held = out[i];
    out[i] = out[j];
    out[j] = held;
  }
}

// One permutation per row of `bits` (rows x n, row-major) into `out` (rows x n).
inline void random_permutations(const uint32_t* bits, int64_t rows, int64_t n, int32_t* out) {
  for (int64_t r = 0; r < rows; ++r) random_permutation(bits + r * n, n, out + r * n);
}

}  // namespace darnax
