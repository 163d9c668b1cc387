// ReleaseGil: the GIL released around a kernel call, safely at interpreter exit.
#pragma once

#include <nanobind/nanobind.h>

#include <unistd.h>

namespace darnax {

// Releases the GIL around a kernel call, as nb::gil_scoped_release does, but survives
// interpreter exit: CPython (before 3.14) ends a daemon thread that asks for the GIL back during
// finalization with pthread_exit, a forced unwind that would reach a noexcept destructor and
// call std::terminate. Such a thread parks here for good instead (as CPython 3.14 does).
class ReleaseGil {
 public:
  ReleaseGil() : state_(PyEval_SaveThread()) {}
  ReleaseGil(const ReleaseGil&) = delete;
  ReleaseGil& operator=(const ReleaseGil&) = delete;
  ~ReleaseGil() {
    try {
      PyEval_RestoreThread(state_);
    } catch (...) {  // only abi::__forced_unwind comes from here (caught by `...`: it has no object)
      nanobind::set_leak_warnings(false);  // this thread's arguments stay referenced: not a leak
      for (;;) pause();              // never leaves: the process is exiting
    }
  }

 private:
  PyThreadState* state_;
};

}  // namespace darnax
