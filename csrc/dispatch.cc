// Picks the kernel build for this CPU once: AVX2 where available (x86-64), else the portable
// baseline, unless DARNAX_KERNELS names one.
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

#include "kernels/table.h"

namespace darnax {
namespace baseline {
template <typename T>
KernelTable<T> make_table();
}
#ifdef DARNAX_HAVE_AVX2
namespace avx2 {
template <typename T>
KernelTable<T> make_table();
}
#endif

static bool avx2_available() {
#ifdef DARNAX_HAVE_AVX2
  return __builtin_cpu_supports("avx2");
#else
  return false;
#endif
}

// DARNAX_KERNELS=baseline|avx2 forces one build (to compare builds, or to debug); a name this
// build or CPU cannot run is an error, never a silent fallback.
const char* kernel_isa() {
  static const char* isa = [] {
    const char* env = std::getenv("DARNAX_KERNELS");
    if (!env || !*env) return avx2_available() ? "avx2" : "baseline";
    if (std::strcmp(env, "baseline") == 0) return "baseline";
    if (std::strcmp(env, "avx2") == 0 && avx2_available()) return "avx2";
    throw std::runtime_error(std::string("DARNAX_KERNELS=") + env + ": expected one of baseline" +
                             (avx2_available() ? ", avx2" : "") + " (or unset: the best one)");
  }();
  return isa;
}

template <typename T>
const KernelTable<T>& kernels() {
#ifdef DARNAX_HAVE_AVX2
  static const KernelTable<T> table =
      std::strcmp(kernel_isa(), "avx2") == 0 ? avx2::make_table<T>() : baseline::make_table<T>();
#else
  static const KernelTable<T> table = baseline::make_table<T>();
#endif
  return table;
}

template const KernelTable<float>& kernels<float>();
template const KernelTable<double>& kernels<double>();

}  // namespace darnax
