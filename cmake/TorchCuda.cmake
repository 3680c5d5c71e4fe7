# CUDA for LibTorch from the PyPI nvidia-* wheels the torch wheel depends on, never from a
# system toolkit's libraries. Two wheel layouts: CUDA 12 (the pinned torch 2.9.1: CUDA
# 12.8, NCCL 2.27) puts each library in nvidia/<package>/; CUDA 13 (torch >= 2.10 on PyPI,
# as on the GPU machines tests/gpu/run_gpu_checks.sh runs on) puts them all in nvidia/cu13/.
# NCCL is nvidia/nccl/ in both.
#
# Torch's config (Caffe2/public/cuda.cmake) would enable_language(CUDA) and insist on an
# nvcc whose version equals the CUDA headers'; PyPI has no nvcc 12 program (the cu12 nvcc
# wheel holds only ptxas, crt/ headers and libnvvm), and the nvcc found on a machine may be
# another major version (13 here), which would link a second CUDA runtime. We compile no
# CUDA ourselves, so we define the target that file's include guard tests (torch::cudart)
# from the wheels: torch's cuda.cmake then returns at once; no nvcc, no GPU probe and no
# /usr/local/cuda on any link path, for CPU and CUDA builds alike.
#
# cuda_runtime.h needs crt/ and cuda_fp16.h nv/target. For CUDA 12 they come from
# nvidia-cuda-nvcc-cu12 and nvidia-cuda-cccl-cu12 (pinned in scripts/install_deps.sh):
# without them gcc would silently take a system CUDA's from /usr/local/include. The CUDA 13
# wheels torch depends on have neither, so a CUDA 13 build takes them (headers only) from
# a toolkit of the same major version: RLHF_CUDA_TOOLKIT_INCLUDE, found under
# $CUDA_HOME or /usr/local/cuda*, its CUDART_VERSION checked.
#
# Input: Torch_DIR (inside the wheel). Output: the target torch::cudart and
# RLHF_TORCH_CUDA_MAJOR (12 or 13).
if(NOT RLHF_PY_SITE)
  get_filename_component(RLHF_PY_SITE ${Torch_DIR}/../../../.. ABSOLUTE)
endif()
set(_nv ${RLHF_PY_SITE}/nvidia)
set(_cuda_includes)
if(IS_DIRECTORY ${_nv}/cu13/lib)
  set(RLHF_TORCH_CUDA_MAJOR 13)
  set(_cudart_dir ${_nv}/cu13/lib)
  set(_wheel_include_dirs ${_nv}/cu13/include ${_nv}/nccl/include)
else()
  set(RLHF_TORCH_CUDA_MAJOR 12)
  set(_cudart_dir ${_nv}/cuda_runtime/lib)
  set(_wheel_include_dirs)
  foreach(pkg cuda_runtime cuda_nvcc cuda_cccl nccl cublas cusparse cusolver curand cufft nvtx)
    list(APPEND _wheel_include_dirs ${_nv}/${pkg}/include)
  endforeach()
endif()
if(RLHF_WITH_CUDA)
  foreach(dir ${_wheel_include_dirs})
    if(NOT IS_DIRECTORY ${dir})
      message(FATAL_ERROR "${dir} is missing: run scripts/install_deps.sh")
    endif()
  endforeach()
  set(_cuda_includes ${_wheel_include_dirs})
  if(RLHF_TORCH_CUDA_MAJOR EQUAL 13)
    find_path(RLHF_CUDA_TOOLKIT_INCLUDE NAMES crt/host_config.h nv/target
      HINTS $ENV{CUDA_HOME}/include /usr/local/cuda-13.0/include /usr/local/cuda-13/include
            /usr/local/cuda/include
      NO_DEFAULT_PATH)
    if(NOT RLHF_CUDA_TOOLKIT_INCLUDE)
      message(FATAL_ERROR "torch's CUDA 13 wheels lack crt/ and nv/target: set CUDA_HOME "
        "(or -DRLHF_CUDA_TOOLKIT_INCLUDE=) to a CUDA 13 toolkit")
    endif()
    file(STRINGS ${RLHF_CUDA_TOOLKIT_INCLUDE}/cuda_runtime_api.h _cudart_line
      REGEX "^#define CUDART_VERSION +[0-9]+")
    string(REGEX MATCH "[0-9]+" _cudart_version "${_cudart_line}")
    math(EXPR _toolkit_major "${_cudart_version} / 1000")
    if(NOT _toolkit_major EQUAL 13)
      message(FATAL_ERROR "${RLHF_CUDA_TOOLKIT_INCLUDE} is CUDA ${_cudart_version}, "
        "torch's wheels are CUDA 13")
    endif()
    # After the wheel's own headers: only what they lack is taken from the toolkit.
    list(APPEND _cuda_includes ${RLHF_CUDA_TOOLKIT_INCLUDE})
  endif()
endif()
find_file(RLHF_CUDART_LIB libcudart.so.${RLHF_TORCH_CUDA_MAJOR} PATHS ${_cudart_dir}
  NO_DEFAULT_PATH REQUIRED)
find_file(RLHF_NCCL_LIB libnccl.so.2 PATHS ${_nv}/nccl/lib NO_DEFAULT_PATH REQUIRED)
add_library(torch::cudart INTERFACE IMPORTED)
set_target_properties(torch::cudart PROPERTIES
  INTERFACE_INCLUDE_DIRECTORIES "${_cuda_includes}"
  INTERFACE_LINK_LIBRARIES "${RLHF_CUDART_LIB};${RLHF_NCCL_LIB}")
# TorchConfig appends ${CUDA_NVRTC_LIB} to TORCH_LIBRARIES; torch loads NVRTC itself.
set(CUDA_NVRTC_LIB "" CACHE FILEPATH "" FORCE)

# Thread stacks vs. static TLS. glibc carves every thread's static TLS (the PT_TLS of all
# libraries loaded at startup) out of the stack size the thread asked for, and
# pthread_create fails with EINVAL when that size cannot hold it (glibc bug 11787).
# Linking torch_cuda loads libcublasLt (~110 KiB of TLS) and friends at startup: about
# 230 KiB of static TLS in all, while Debian's civetweb (prometheus-cpp's Exposer) asks
# for 100 KiB stacks (USE_STACK_SIZE=102400), so its first worker thread fails and
# mg_start2 returns null ("null context when constructing CivetServer"). Every
# executable that links torch_cuda therefore defines pthread_attr_setstacksize, which
# adds glibc's own minimum (__pthread_get_minstack: static TLS + guard + PTHREAD_STACK_MIN)
# to each size requested, so a thread gets the usable stack it asked for.
if(RLHF_WITH_CUDA)
  add_library(rlhf_static_tls_stack OBJECT ${CMAKE_CURRENT_LIST_DIR}/static_tls_stack.c)
  set_target_properties(rlhf_static_tls_stack PROPERTIES POSITION_INDEPENDENT_CODE ON)
  # torch_cuda and c10_cuda link torch::cudart, so every executable that loads them gets
  # the object; the export makes libcivetweb's call bind to it rather than to libc's.
  set_property(TARGET torch::cudart APPEND PROPERTY
    INTERFACE_LINK_LIBRARIES "$<TARGET_OBJECTS:rlhf_static_tls_stack>")
  set_property(TARGET torch::cudart APPEND PROPERTY
    INTERFACE_LINK_OPTIONS "LINKER:--export-dynamic-symbol=pthread_attr_setstacksize")
endif()
