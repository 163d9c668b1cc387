// A sparsity pattern reaches a custom call as one attribute, `pattern`: the 64-bit key of a
// pattern in darnax's store (see store/pattern_store.h), so the compiled program does not grow
// with nnz. The instantiate stage looks the key up once per compiled call and keeps a reference
// in an FFI state: the pattern stays alive as long as the compiled program, and each execution
// reads it in O(1). The store validated the pattern when it was stored.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "ffi/common.h"
#include "store/pattern_store.h"

namespace darnax {

// What instantiation found: the stored pattern a call site names.
struct CheckedPattern {
  static ffi::TypeId id;  // assigned by XLA when darnax registers the type
  PatternRef pattern;
};

using CheckedState = ffi::ErrorOr<std::unique_ptr<CheckedPattern>>;

// Instantiate stage: the stored pattern with this key, or an error saying it is not alive.
CheckedState find_by_col(int64_t key);

// Instantiate stage: as find_by_col, for a square pattern (the sign dynamics).
CheckedState find_square(int64_t key);

// Execute stage, O(1): the pattern `checked` holds, provided it is the one named by `key`
// (nullptr and a message otherwise).
const StoredPattern* pattern_of(const CheckedPattern* checked, int64_t key, std::string& err);

// Execute stage, O(1): as pattern_of, for a product whose input `x` must be (B, d) with d the
// pattern's number of rows.
const StoredPattern* pattern_for_rows(const CheckedPattern* checked, int64_t key,
                                      ffi::Span<const int64_t> x_dims, std::string& err);

// The type's id and deleter, for registration with XLA (jax.ffi.register_ffi_type).
void* checked_pattern_type_id();
void* checked_pattern_type_info();

// Binds the pattern attribute to a handler binding.
template <typename Binding>
auto bind_pattern(Binding binding) {
  return std::move(binding).template Attr<int64_t>("pattern");  // the store's key
}

}  // namespace darnax
