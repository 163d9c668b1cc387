// The instruction set a translation unit compiles the numeric kernels for. Each variant lives in
// its own inline namespace (darnax::baseline, darnax::avx2, ...) so that two builds of the same
// templates never share a symbol; csrc/dispatch.cc picks one at run time.
#pragma once

#ifndef DARNAX_ISA
#define DARNAX_ISA baseline
#endif

// Bytes per SIMD vector in the lane kernels: 16 (SSE2/NEON) unless the ISA build says otherwise.
#ifndef DARNAX_VECTOR_BYTES
#define DARNAX_VECTOR_BYTES 16
#endif
