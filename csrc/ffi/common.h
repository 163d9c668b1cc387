// Shared decoding and validation for the thin XLA FFI handlers.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/pattern.h"
#include "xla/ffi/api/ffi.h"

namespace darnax {
namespace ffi = xla::ffi;

using IndexBuffer = ffi::Buffer<ffi::DataType::S32>;

inline ffi::Error invalid(const std::string& message) {
  return ffi::Error::InvalidArgument("darnax: " + message);
}

inline std::string shape_str(ffi::Span<const int64_t> dims) {
  std::string out = "(";
  for (size_t i = 0; i < dims.size(); ++i) out += (i ? ", " : "") + std::to_string(dims[i]);
  return out + (dims.size() == 1 ? ",)" : ")");
}

// "" when `dims` equals `expected`, else a message naming the buffer.
inline std::string check_shape(ffi::Span<const int64_t> dims, const char* name,
                               const std::vector<int64_t>& expected) {
  bool ok = dims.size() == expected.size();
  for (size_t i = 0; ok && i < dims.size(); ++i) ok = dims[i] == expected[i];
  if (ok) return "";
  std::string want = "(";
  for (size_t i = 0; i < expected.size(); ++i)
    want += (i ? ", " : "") + std::to_string(expected[i]);
  want += expected.size() == 1 ? ",)" : ")";
  return std::string(name) + ": expected shape " + want + ", got " + shape_str(dims);
}

// Leading size of a rank-`rank` buffer, or -1 when the rank is wrong.
inline int64_t dim0(ffi::Span<const int64_t> dims, size_t rank) {
  return dims.size() == rank ? dims[0] : -1;
}

// "" when a handler that binds no attributes got none, else a message naming `op` and the first.
// XLA ignores attributes a handler does not bind, so such handlers take them all and refuse any.
inline std::string check_no_attrs(const char* op, const ffi::Dictionary& attrs) {
  if (attrs.size() == 0) return "";
  return std::string(op) + " takes no attributes, got " + std::to_string(attrs.size()) + " (" +
         std::string(*attrs.begin()) + ", ...)";
}

// Dispatches `fn.template operator()<T>()` on a float dtype, or reports the dtype as invalid.
template <typename Fn>
ffi::Error dispatch_float(ffi::DataType dtype, const char* name, Fn&& fn) {
  switch (dtype) {
    case ffi::DataType::F32:
      return fn(float{});
    case ffi::DataType::F64:
      return fn(double{});
    default:
      return invalid(std::string(name) + ": expected float32 or float64");
  }
}

}  // namespace darnax
