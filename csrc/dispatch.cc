// Picks the kernel build for this CPU once: AVX-512, else AVX2 where available (x86-64), else the
// portable baseline, unless DARNAX_KERNELS names one.
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

#ifdef DARNAX_HAVE_X86_BUILDS
#include <cpuid.h>
#endif

#include "kernels/table.h"

namespace darnax {
namespace baseline {
template <typename T>
KernelTable<T> make_table();
}
#ifdef DARNAX_HAVE_X86_BUILDS
namespace avx2 {
template <typename T>
KernelTable<T> make_table();
}
namespace avx512 {
template <typename T>
KernelTable<T> make_table();
}
#endif

#ifdef DARNAX_HAVE_X86_BUILDS
// The OS saves the registers in XCR0's `state` bits on a context switch (CPUID leaf 1: OSXSAVE
// and AVX, then XGETBV).
static bool os_saves(unsigned state) {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return false;
  constexpr unsigned kOsxsave = 1u << 27, kAvx = 1u << 28;
  if ((ecx & kOsxsave) == 0 || (ecx & kAvx) == 0) return false;
  unsigned xcr0_lo = 0, xcr0_hi = 0;
  __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
  return (xcr0_lo & state) == state;
}

// CPUID leaf 7's EBX feature bits.
static unsigned leaf7_ebx() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  return __get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) ? ebx : 0;
}
#endif

// Read from CPUID directly rather than through __builtin_cpu_supports, which needs the
// compiler's runtime to have initialised its CPU model (zig's does not: it reports no AVX2).
// AVX2: leaf 7 EBX bit 5, with the XMM and YMM state saved (XCR0 bits 1-2).
static bool avx2_available() {
#ifdef DARNAX_HAVE_X86_BUILDS
  return os_saves(0x6) && (leaf7_ebx() & (1u << 5)) != 0;
#else
  return false;
#endif
}

// AVX-512 F, DQ, BW and VL: leaf 7 EBX bits 16, 17, 30 and 31, with the opmask and ZMM state
// saved too (XCR0 bits 5-7).
static bool avx512_available() {
#ifdef DARNAX_HAVE_X86_BUILDS
  constexpr unsigned kFeatures = (1u << 16) | (1u << 17) | (1u << 30) | (1u << 31);
  return avx2_available() && os_saves(0xe6) && (leaf7_ebx() & kFeatures) == kFeatures;
#else
  return false;
#endif
}

// DARNAX_KERNELS=baseline|avx2|avx512 forces one build (to compare builds, or to debug); a name
// this build or CPU cannot run is an error, never a silent fallback.
const char* kernel_isa() {
  static const char* isa = [] {
    const char* best = avx512_available() ? "avx512" : avx2_available() ? "avx2" : "baseline";
    const char* env = std::getenv("DARNAX_KERNELS");
    if (!env || !*env) return best;
    if (std::strcmp(env, "baseline") == 0) return "baseline";
    if (std::strcmp(env, "avx2") == 0 && avx2_available()) return "avx2";
    if (std::strcmp(env, "avx512") == 0 && avx512_available()) return "avx512";
    throw std::runtime_error(std::string("DARNAX_KERNELS=") + env + ": expected one of baseline" +
                             (avx2_available() ? ", avx2" : "") + (avx512_available() ? ", avx512" : "") +
                             " (or unset: the best one)");
  }();
  return isa;
}

template <typename T>
const KernelTable<T>& kernels() {
#ifdef DARNAX_HAVE_X86_BUILDS
  static const KernelTable<T> table = std::strcmp(kernel_isa(), "avx512") == 0 ? avx512::make_table<T>()
                                      : std::strcmp(kernel_isa(), "avx2") == 0   ? avx2::make_table<T>()
                                                                                 : baseline::make_table<T>();
#else
  static const KernelTable<T> table = baseline::make_table<T>();
#endif
  return table;
}

template const KernelTable<float>& kernels<float>();
template const KernelTable<double>& kernels<double>();

}  // namespace darnax
