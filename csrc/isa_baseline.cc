// The kernels for any CPU of the target architecture (SSE2 on x86-64).
#define DARNAX_ISA baseline
#include "isa_variant.inc"
