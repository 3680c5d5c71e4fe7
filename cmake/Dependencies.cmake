# Third-party packages: Debian's archive (gRPC, Protobuf, Abseil, prometheus-cpp,
# GoogleTest, Google Benchmark, SQLite, nlohmann-json, PCRE2) and PyPI's torch wheel
# (LibTorch), installed by scripts/install_deps.sh.
# The torch wheel ships the headers of the protobuf it links privately (3.13) in
# include/google/. Generated code must see Debian's protobuf headers (3.21) instead,
# so torch's include dir is mirrored without google/ and its targets pointed there.
function(rlhf_hide_torch_protobuf_headers)
  set(real ${TORCH_INSTALL_PREFIX}/include)
  set(mirror ${PROJECT_BINARY_DIR}/torch_include)
  file(GLOB entries RELATIVE ${real} ${real}/*)
  foreach(entry ${entries})
    if(NOT entry STREQUAL "google" AND NOT EXISTS ${mirror}/${entry})
      file(MAKE_DIRECTORY ${mirror})
      file(CREATE_LINK ${real}/${entry} ${mirror}/${entry} SYMBOLIC)
    endif()
  endforeach()
  set(dirs ${mirror} ${mirror}/torch/csrc/api/include)
  foreach(target c10 c10_cuda torch_cpu torch_cuda torch)
    if(TARGET ${target})
      set_target_properties(${target} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${dirs}")
    endif()
  endforeach()
  set(RLHF_TORCH_INCLUDE_DIRS ${dirs} PARENT_SCOPE)
endfunction()

find_package(Threads REQUIRED)
find_package(PkgConfig REQUIRED)
find_package(absl CONFIG REQUIRED)
find_package(nlohmann_json CONFIG REQUIRED)
find_package(OpenSSL REQUIRED)  # libcrypto: SHA-256 of checkpoint files
pkg_check_modules(PCRE2 REQUIRED IMPORTED_TARGET libpcre2-8)
pkg_check_modules(UTF8PROC REQUIRED IMPORTED_TARGET libutf8proc)

if(RLHF_BUILD_TESTS OR RLHF_FUZZ)
  find_package(GTest CONFIG REQUIRED)
endif()

if(RLHF_WITH_TORCH)
  find_package(Protobuf REQUIRED)
  find_package(gRPC CONFIG REQUIRED)
  find_package(prometheus-cpp CONFIG REQUIRED)
  find_package(SQLite3 REQUIRED)
  if(RLHF_BUILD_BENCH)
    find_package(benchmark CONFIG REQUIRED)
  endif()

  # LibTorch from the project's virtual environment (.venv), unless Torch_DIR is given.
  if(NOT Torch_DIR)
    set(_venv_python ${CMAKE_SOURCE_DIR}/.venv/bin/python)
    if(NOT EXISTS ${_venv_python})
      message(FATAL_ERROR "No .venv: run scripts/install_deps.sh first (or pass -DTorch_DIR=...)")
    endif()
    execute_process(
      COMMAND ${_venv_python} -c "import torch.utils; print(torch.utils.cmake_prefix_path)"
      OUTPUT_VARIABLE _torch_prefix OUTPUT_STRIP_TRAILING_WHITESPACE COMMAND_ERROR_IS_FATAL ANY)
    set(Torch_DIR ${_torch_prefix}/Torch)
  endif()
  include(cmake/TorchCuda.cmake)  # CUDA from the wheel's nvidia packages: torch::cudart
  find_package(Torch CONFIG REQUIRED)
  set(TORCH_INSTALL_PREFIX ${TORCH_INSTALL_PREFIX} CACHE INTERNAL "")
  # The wheel is CUDA-built; a CPU build links only torch_cpu and c10 (which still load
  # the wheel's libcudart.so.12 through their own run paths), so binaries start fast and
  # need no GPU. RLHF_WITH_CUDA links the full set (torch_cuda, NCCL).
  add_library(rlhf_torch INTERFACE)
  # CUDA is linked, not compiled against: loading torch_cuda registers LibTorch's CUDA
  # hooks, so every file compiles exactly as in the CPU build (one compiler cache serves
  # both) and only common/train/nccl_backend.cc sees CUDA headers. --no-as-needed keeps
  # torch_cuda although nothing else names its symbols.
  if(RLHF_WITH_CUDA)
    target_link_libraries(rlhf_torch INTERFACE torch_cpu c10
                          $<LINK_ONLY:torch_cuda> $<LINK_ONLY:c10_cuda>)
    target_link_options(rlhf_torch INTERFACE "LINKER:--no-as-needed")
  else()
    target_link_libraries(rlhf_torch INTERFACE torch_cpu c10)
  endif()
  rlhf_hide_torch_protobuf_headers()
  target_include_directories(rlhf_torch SYSTEM INTERFACE ${RLHF_TORCH_INCLUDE_DIRS})
  separate_arguments(_torch_flags UNIX_COMMAND "${TORCH_CXX_FLAGS}")
  # -pthread everywhere (gRPC adds it to its users): one flag set, so one PCH serves all.
  target_compile_options(rlhf_torch INTERFACE ${_torch_flags} -pthread)
  target_link_options(rlhf_torch INTERFACE -pthread)
endif()
