// The exception barrier of every FFI handler: a C++ exception thrown anywhere below a handler
// (an allocation failure, a kernel's pool task, a bad environment variable) becomes an FFI error
// naming the target, which JAX raises as a Python exception. Nothing reaches XLA as a throw,
// which would call std::terminate and kill the user's process.
#pragma once

#include <exception>
#include <new>
#include <string>
#include <type_traits>
#include <utility>

#include "ffi/common.h"

namespace darnax {

// The error for the exception being handled (call only inside a catch block).
inline ffi::Error error_from_exception(const char* target) noexcept {
  try {
    try {
      throw;
    } catch (const std::bad_alloc&) {
      return ffi::Error(ffi::ErrorCode::kResourceExhausted,
                        std::string(target) + ": out of memory (std::bad_alloc)");
    } catch (const std::exception& e) {
      return ffi::Error::Internal(std::string(target) + ": " + e.what());
    } catch (...) {
      return ffi::Error::Internal(std::string(target) + ": unknown C++ exception");
    }
  } catch (...) {  // no memory left even for the message: a short one needs no allocation
    return ffi::Error(ffi::ErrorCode::kResourceExhausted, "out of memory");
  }
}

// Guarded<Target, Impl>::call is Impl behind the barrier; Impl returns ffi::Error (execute
// stage) or ffi::ErrorOr<...> (instantiate stage).
template <const char* Target, auto Impl>
struct Guarded;

template <const char* Target, typename R, typename... Args, R (*Impl)(Args...)>
struct Guarded<Target, Impl> {
  static R call(Args... args) noexcept {
    try {
      return Impl(std::forward<Args>(args)...);
    } catch (...) {
      if constexpr (std::is_same_v<R, ffi::Error>) {
        return error_from_exception(Target);
      } else {
        return ffi::Unexpected(error_from_exception(Target));
      }
    }
  }
};

// The guarded handler function: pass it, in parentheses, to XLA_FFI_DEFINE_HANDLER_SYMBOL.
template <const char* Target, auto Impl>
constexpr auto guarded = &Guarded<Target, Impl>::call;

}  // namespace darnax
