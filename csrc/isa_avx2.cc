// The kernels for x86-64 CPUs with AVX2 (compiled with -mavx2, without contraction into FMA, so
// that every result equals the baseline build's bit for bit).
#define DARNAX_ISA avx2
#define DARNAX_VECTOR_BYTES 32
#include "isa_variant.inc"
