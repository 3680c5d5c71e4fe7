# CUDA for LibTorch from the PyPI nvidia-*-cu12 wheels the torch wheel depends on (CUDA
# 12.8, NCCL 2.27), never from a system toolkit.
#
# Torch's config (Caffe2/public/cuda.cmake) would enable_language(CUDA) and insist on an
# nvcc whose version equals the CUDA headers'; PyPI has no nvcc 12 program (the cu12 nvcc
# wheel holds only ptxas, crt/ headers and libnvvm), and the nvcc found on a machine may be
# another major version (13 here), which would link a second CUDA runtime. We compile no
# CUDA ourselves, so we define the target that file's include guard tests (torch::cudart)
# from the wheels: torch's cuda.cmake then returns at once; no nvcc, no GPU probe and no
# /usr/local/cuda on any path, for CPU and CUDA builds alike.
#
# cuda_runtime.h needs crt/ (nvidia-cuda-nvcc-cu12) and cuda_fp16.h nv/target
# (nvidia-cuda-cccl-cu12), both pinned in scripts/install_deps.sh: without them gcc would
# silently take a system CUDA's from /usr/local/include.
#
# Input: Torch_DIR (inside the wheel). Output: the target torch::cudart.
if(NOT RLHF_PY_SITE)
  get_filename_component(RLHF_PY_SITE ${Torch_DIR}/../../../.. ABSOLUTE)
endif()
set(_nv ${RLHF_PY_SITE}/nvidia)
set(_cuda_includes)
if(RLHF_WITH_CUDA)
  foreach(pkg cuda_runtime cuda_nvcc cuda_cccl nccl cublas cusparse cusolver curand cufft nvtx)
    if(NOT IS_DIRECTORY ${_nv}/${pkg}/include)
      message(FATAL_ERROR "${_nv}/${pkg}/include is missing: run scripts/install_deps.sh")
    endif()
    list(APPEND _cuda_includes ${_nv}/${pkg}/include)
  endforeach()
endif()
find_file(RLHF_CUDART_LIB libcudart.so.12 PATHS ${_nv}/cuda_runtime/lib NO_DEFAULT_PATH REQUIRED)
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
