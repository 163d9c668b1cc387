// A sparsity pattern travels to a custom call as attributes (static int32 arrays in the HLO)
// and is validated once, when XLA instantiates the call (the FFI instantiate stage): the state
// left there records the sizes that were proven valid, and each execution only checks that the
// attributes it decodes have those sizes (O(1)), instead of rescanning O(nnz) indices per call.
#pragma once

#include <climits>
#include <cstdint>
#include <memory>
#include <string>

#include "ffi/common.h"

namespace darnax {

using IndexSpan = ffi::Span<const int32_t>;

// What instantiation proved about a call's pattern attributes.
struct CheckedPattern {
  static ffi::TypeId id;  // assigned by XLA when darnax registers the type
  int64_t n_rows = 0, n_cols = 0, nnz = 0;
  bool square = false;  // the row orientation and csr_pos were checked as well
};

using CheckedState = ffi::ErrorOr<std::unique_ptr<CheckedPattern>>;

// Instantiate stage: a (n_rows, K) pattern given by column (sparse_matmul, sparse_outer).
CheckedState check_by_col_attrs(IndexSpan col_ptr, IndexSpan row_idx, int64_t n_rows);

// Instantiate stage: a square (N, N) pattern in both orientations (the sign dynamics).
CheckedState check_square_attrs(IndexSpan col_ptr, IndexSpan row_idx, IndexSpan row_ptr,
                                IndexSpan col_idx, IndexSpan csr_pos);

// Execute stage, O(1): the column orientation of a checked pattern with `n_rows` rows; "" or why
// the attributes do not match what instantiation checked.
std::string by_col_view(const CheckedPattern* st, IndexSpan col_ptr, IndexSpan row_idx,
                        int64_t n_rows, Compressed& out);

// Execute stage, O(1): both orientations of a checked square pattern of width n.
std::string square_view(const CheckedPattern* st, IndexSpan col_ptr, IndexSpan row_idx,
                        IndexSpan row_ptr, IndexSpan col_idx, IndexSpan csr_pos, int64_t n,
                        Pattern& out);

// The type's id and deleter, for registration with XLA (jax.ffi.register_ffi_type).
void* checked_pattern_type_id();
void* checked_pattern_type_info();

// Binds the by-column pattern attributes to a handler binding.
template <typename Binding>
auto bind_by_col_attrs(Binding binding) {
  return std::move(binding)
      .template Attr<IndexSpan>("col_ptr")   // (K + 1,)
      .template Attr<IndexSpan>("row_idx")   // (nnz,)
      .template Attr<int64_t>("n_rows");     // d
}

// Binds the square pattern attributes to a handler binding.
template <typename Binding>
auto bind_square_attrs(Binding binding) {
  return std::move(binding)
      .template Attr<IndexSpan>("col_ptr")   // (N + 1,)
      .template Attr<IndexSpan>("row_idx")   // (nnz,)
      .template Attr<IndexSpan>("row_ptr")   // (N + 1,)
      .template Attr<IndexSpan>("col_idx")   // (nnz,)
      .template Attr<IndexSpan>("csr_pos");  // (nnz,): row-order entry -> position in values
}

}  // namespace darnax
