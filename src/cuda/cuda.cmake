# cuda.cmake — the CUDA backend (src/cuda/*.cu) built into libsembed, its tests and its
# benchmark program. Included by CMakeLists.txt when nvcc is found; compiles without a GPU.
if(NOT CMAKE_CUDA_ARCHITECTURES)
  # Hopper is the target (scripts/gpu-check.sh); override with -DCMAKE_CUDA_ARCHITECTURES=...
  set(CMAKE_CUDA_ARCHITECTURES 90)
endif()
enable_language(CUDA)
find_package(CUDAToolkit REQUIRED)

# The targets above were made before CUDA was a language here: give them the architectures,
# and keep the C compile options (warnings, sanitizers) away from nvcc.
# The targets made below get the same treatment through the directory's options.
get_property(_sembed_targets DIRECTORY ${CMAKE_SOURCE_DIR} PROPERTY BUILDSYSTEM_TARGETS)
foreach(_t ${_sembed_targets} _SEMBED_DIRECTORY_)
  if(_t STREQUAL "_SEMBED_DIRECTORY_")
    set(_scope DIRECTORY ${CMAKE_SOURCE_DIR})
  else()
    set(_scope TARGET ${_t})
    set_property(TARGET ${_t} PROPERTY CUDA_ARCHITECTURES ${CMAKE_CUDA_ARCHITECTURES})
  endif()
  # (link options stay: CMake links CUDA executables through the host compiler)
  get_property(_opts ${_scope} PROPERTY COMPILE_OPTIONS)
  if(_opts)
    set(_wrapped "")
    foreach(_o ${_opts})
      list(APPEND _wrapped "$<$<COMPILE_LANGUAGE:C>:${_o}>")
    endforeach()
    set_property(${_scope} PROPERTY COMPILE_OPTIONS "${_wrapped}")
  endif()
endforeach()
set(CMAKE_CUDA_STANDARD 17)
set(CMAKE_CUDA_STANDARD_REQUIRED ON)

file(GLOB SEMBED_CUDA_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/cuda/*.cu)
# The C warning set is for C; nvcc gets its own (host warnings through -Xcompiler).
set(SEMBED_CUDA_FLAGS -Xcompiler=-Wall,-Wextra,-Wno-pedantic --expt-relaxed-constexpr
    -Xptxas=-warn-spills)
if(SEMBED_WERROR)
  list(APPEND SEMBED_CUDA_FLAGS -Werror=all-warnings -Xcompiler=-Werror)
endif()

# CUTLASS (header-only; scripts/fetch_cutlass.sh unpacks it from PyPI) for src/cuda/gemm_sm90.cu
# (Hopper GEMMs with sembed's fused epilogue) and src/cuda/attention_sm90.cu (attention on wgmma
# through CuTe), built for sm_90a (wgmma needs the arch-specific target) when the architectures
# include 90. Without CUTLASS or 90 those files build empty: the plan (gemm.cu) keeps cuBLASLt and
# attention.cu its mma.sync kernel.
set(SEMBED_CUTLASS_DIR "" CACHE PATH "CUTLASS root (include/cutlass/cutlass.h); empty: look in .carry/cutlass and ~/.cache/sembed")
set(_cutlass_root "")
foreach(_d "${SEMBED_CUTLASS_DIR}" "$ENV{SEMBED_CUTLASS_DIR}" "${CMAKE_SOURCE_DIR}/.carry/cutlass"
        "$ENV{HOME}/.cache/sembed/cutlass-4.2.0.0")
  if(NOT _cutlass_root AND _d AND EXISTS "${_d}/include/cutlass/cutlass.h")
    set(_cutlass_root "${_d}")
  endif()
endforeach()
set(_sm90_src ${CMAKE_SOURCE_DIR}/src/cuda/gemm_sm90.cu ${CMAKE_SOURCE_DIR}/src/cuda/attention_sm90.cu)
list(REMOVE_ITEM SEMBED_CUDA_SOURCES ${_sm90_src})
if(_cutlass_root AND ("90" IN_LIST CMAKE_CUDA_ARCHITECTURES OR "90a" IN_LIST CMAKE_CUDA_ARCHITECTURES))
  message(STATUS "sembed: CUTLASS at ${_cutlass_root}: Hopper GEMMs and attention (sm_90a) built")
  add_library(sembed_sm90 OBJECT ${_sm90_src})
  set_target_properties(sembed_sm90 PROPERTIES CUDA_ARCHITECTURES OFF POSITION_INDEPENDENT_CODE ON)
  target_compile_options(sembed_sm90 PRIVATE ${SEMBED_CUDA_FLAGS}
                         --generate-code=arch=compute_90a,code=sm_90a --split-compile=0)
  target_compile_definitions(sembed_sm90 PRIVATE SEMBED_HAVE_CUTLASS=1)
  target_include_directories(sembed_sm90 PRIVATE ${CMAKE_SOURCE_DIR}/include ${CMAKE_SOURCE_DIR}/src
                             ${CMAKE_SOURCE_DIR}/src/cuda)
  target_include_directories(sembed_sm90 SYSTEM PRIVATE ${_cutlass_root}/include
                             ${_cutlass_root}/tools/util/include)
  target_sources(sembed PRIVATE $<TARGET_OBJECTS:sembed_sm90>)
  if(TARGET sembed_shared)
    target_sources(sembed_shared PRIVATE $<TARGET_OBJECTS:sembed_sm90>)
  endif()
else()
  message(STATUS "sembed: no CUTLASS (scripts/fetch_cutlass.sh) or no sm_90: cuBLASLt GEMMs only")
  list(APPEND SEMBED_CUDA_SOURCES ${_sm90_src})
endif()
target_sources(sembed PRIVATE ${SEMBED_CUDA_SOURCES})
set_source_files_properties(${SEMBED_CUDA_SOURCES} PROPERTIES COMPILE_OPTIONS
                            "${SEMBED_CUDA_FLAGS}")
target_compile_definitions(sembed PUBLIC SEMBED_HAVE_CUDA=1)
target_link_libraries(sembed PUBLIC CUDA::cudart CUDA::cublasLt ${CMAKE_DL_LIBS}) # dladdr: gemm.cu
# Whole-program CUDA (no relocatable device code): no device-link step, whose nvcc call would
# also receive the C link options (sanitizers).
set_target_properties(sembed PROPERTIES CUDA_SEPARABLE_COMPILATION OFF
                      CUDA_RESOLVE_DEVICE_SYMBOLS OFF)

# per-op tests written in CUDA C++ (the C tests, tests/test_cuda_*.c, come from the main glob)
file(GLOB SEMBED_CUDA_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/test_cuda_*.cu)
foreach(t ${SEMBED_CUDA_TESTS})
  get_filename_component(name ${t} NAME_WE)
  add_executable(${name} ${t})
  set_source_files_properties(${t} PROPERTIES COMPILE_OPTIONS "${SEMBED_CUDA_FLAGS}")
  target_link_libraries(${name} PRIVATE sembed_testlib)
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR}/src/cuda)
  add_test(NAME ${name} COMMAND ${name} WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(${name} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 1800)
endforeach()

# the GPU benchmark program (bench/gpu_bench.c), run by scripts/gpu-check.sh
if(EXISTS ${CMAKE_SOURCE_DIR}/bench/gpu_bench.c)
  add_executable(gpu_bench ${CMAKE_SOURCE_DIR}/bench/gpu_bench.c)
  target_link_libraries(gpu_bench PRIVATE sembed)
  target_include_directories(gpu_bench PRIVATE ${CMAKE_SOURCE_DIR}/src)
endif()

# `sembed bench --device cuda` names the card (src/cuda/sembed_cuda.h)
if(TARGET sembed_cli)
  target_include_directories(sembed_cli PRIVATE ${CMAKE_SOURCE_DIR}/src)
endif()
