# The optional CUDA build (DARNAX_CUDA=ON): the kernels of csrc/cuda in a static library compiled
# by nvcc, and their thin FFI handlers in _ext, compiled by the host compiler.

include(CheckLanguage)
check_language(CUDA)
if(NOT CMAKE_CUDA_COMPILER)
  message(FATAL_ERROR "darnax: DARNAX_CUDA=ON but no CUDA compiler was found; install the CUDA toolkit "
                      "(nvcc), put it on PATH or set CMAKE_CUDA_COMPILER, or build without DARNAX_CUDA.")
endif()
# H200/H100 (sm_90) unless told otherwise, e.g. -DCMAKE_CUDA_ARCHITECTURES="80;90". Never
# "native": the build machine may have no GPU.
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
  set(CMAKE_CUDA_ARCHITECTURES 90)
endif()
enable_language(CUDA)
find_package(CUDAToolkit REQUIRED)
set(CMAKE_CUDA_STANDARD 17)
set(CMAKE_CUDA_STANDARD_REQUIRED ON)
message(STATUS "darnax: CUDA kernels for sm ${CMAKE_CUDA_ARCHITECTURES}, CUDA ${CUDAToolkit_VERSION}")

add_library(darnax_cuda_kernels STATIC
  csrc/cuda/sparse_products.cu
  csrc/cuda/sign_dynamics.cu
  csrc/cuda/device_pattern.cc)
target_include_directories(darnax_cuda_kernels PRIVATE csrc)
# The runtime is linked statically into _ext: the module then needs only the NVIDIA driver, not
# a libcudart of one version (JAX's CUDA plugin brings its own).
set_target_properties(darnax_cuda_kernels PROPERTIES
  POSITION_INDEPENDENT_CODE ON
  CUDA_RUNTIME_LIBRARY Static
  CXX_VISIBILITY_PRESET hidden
  CUDA_VISIBILITY_PRESET hidden)
# No fused multiply-add where the source does not ask for one: results must round as the CPU
# kernels (built with -ffp-contract=off) round. The kernels use _rn intrinsics too.
target_compile_options(darnax_cuda_kernels PRIVATE
  $<$<COMPILE_LANGUAGE:CUDA>:--fmad=false -Xcompiler=-Wall>
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra>)
target_link_libraries(darnax_cuda_kernels PUBLIC CUDA::cudart_static)

target_sources(_ext PRIVATE
  csrc/ffi/cuda_state.cc
  csrc/ffi/cuda_products.cc
  csrc/ffi/cuda_sign_dynamics.cc)
target_compile_definitions(_ext PRIVATE DARNAX_CUDA)
target_link_libraries(_ext PRIVATE darnax_cuda_kernels)
