// The kernels for x86-64 CPUs with AVX-512 (F, VL, BW, DQ; 16 float lanes in one register),
// compiled without contraction into FMA (tools/check_isa.py finds no FMA instruction), so that
// every result equals the baseline build's bit for bit.
#define DARNAX_ISA avx512
#define DARNAX_VECTOR_BYTES 64
#include "isa_variant.inc"
