// The checks of the two pattern products' buffers (shapes, dtypes, the pattern key), shared by
// their CPU and CUDA handlers so that both reject the same calls with the same messages.
#pragma once

#include <string>

#include "ffi/common.h"
#include "ffi/pattern_attrs.h"

namespace darnax {

// sparse_matmul: x (B, d), values (nnz,), out (B, K), one float dtype. "" on success, with
// `pattern` the stored pattern; else the message.
inline std::string check_matmul(const CheckedPattern* checked, int64_t key, const ffi::AnyBuffer& x,
                                const ffi::AnyBuffer& values, const ffi::AnyBuffer& out,
                                const StoredPattern*& pattern) {
  std::string err;
  pattern = pattern_for_rows(checked, key, x.dimensions(), err);
  if (pattern == nullptr) return err;
  const Compressed w = pattern->by_col();
  err = check_shape(values.dimensions(), "values", {w.nnz});
  if (err.empty()) err = check_shape(out.dimensions(), "out", {x.dimensions()[0], w.n_outer});
  if (!err.empty()) return err;
  if (values.element_type() != x.element_type() || out.element_type() != x.element_type())
    return "x, values and out must share one dtype";
  return "";
}

// sparse_outer: x (B, d), e (B, K), out (nnz,), one float dtype; as check_matmul.
inline std::string check_outer(const CheckedPattern* checked, int64_t key, const ffi::AnyBuffer& x,
                               const ffi::AnyBuffer& e, const ffi::AnyBuffer& out, const StoredPattern*& pattern) {
  std::string err;
  pattern = pattern_for_rows(checked, key, x.dimensions(), err);
  if (pattern == nullptr) return err;
  const Compressed w = pattern->by_col();
  err = check_shape(e.dimensions(), "e", {x.dimensions()[0], w.n_outer});
  if (err.empty()) err = check_shape(out.dimensions(), "out", {w.nnz});
  if (!err.empty()) return err;
  if (e.element_type() != x.element_type() || out.element_type() != x.element_type())
    return "x, e and out must share one dtype";
  return "";
}

}  // namespace darnax
