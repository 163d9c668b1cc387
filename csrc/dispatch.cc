// Picks the kernel build for this CPU once: AVX2 where available (x86-64), else the baseline.
#include <cstdlib>
#include <cstring>

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

// DARNAX_KERNELS=baseline forces the portable build (to compare builds, or to debug).
static bool use_avx2() {
#ifdef DARNAX_HAVE_AVX2
  static const bool yes = __builtin_cpu_supports("avx2") &&
                          !(std::getenv("DARNAX_KERNELS") &&
                            std::strcmp(std::getenv("DARNAX_KERNELS"), "baseline") == 0);
  return yes;
#else
  return false;
#endif
}

template <typename T>
const KernelTable<T>& kernels() {
#ifdef DARNAX_HAVE_AVX2
  static const KernelTable<T> table = use_avx2() ? avx2::make_table<T>() : baseline::make_table<T>();
#else
  static const KernelTable<T> table = baseline::make_table<T>();
#endif
  return table;
}

template const KernelTable<float>& kernels<float>();
template const KernelTable<double>& kernels<double>();

const char* kernel_isa() { return use_avx2() ? "avx2" : "baseline"; }

}  // namespace darnax
