# Helpers that keep every target's flags identical (so precompiled headers are reused).

set(RLHF_WARNINGS -Wall -Wextra -Wno-unused-parameter)
set(_rlhf_sanitize_flags "")
if(RLHF_SANITIZE)
  set(_rlhf_sanitize_flags -fsanitize=${RLHF_SANITIZE} -fno-omit-frame-pointer
                           -fno-sanitize-recover=all)
endif()

# rlhf_library(NAME SOURCES ... DEPS ... [TORCH])
# One library per common/ area; TORCH adds LibTorch and its precompiled header.
function(rlhf_library name)
  cmake_parse_arguments(ARG "TORCH" "" "SOURCES;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
  target_compile_options(${name} PRIVATE ${RLHF_WARNINGS})
  target_compile_options(${name} PUBLIC ${_rlhf_sanitize_flags})
  target_link_options(${name} PUBLIC ${_rlhf_sanitize_flags})
  if(ARG_TORCH)
    target_link_libraries(${name} PUBLIC rlhf_torch)
    rlhf_torch_pch(${name})
  endif()
endfunction()

# Torch's headers are the bulk of every compile: build them once as a PCH.
function(rlhf_torch_pch target)
  if(NOT TARGET rlhf_torch_pch)
    add_library(rlhf_torch_pch STATIC ${PROJECT_SOURCE_DIR}/cmake/torch_pch.cc)
    target_link_libraries(rlhf_torch_pch PUBLIC rlhf_torch)
    target_compile_options(rlhf_torch_pch PUBLIC ${_rlhf_sanitize_flags})
    target_precompile_headers(rlhf_torch_pch PRIVATE <torch/torch.h>)
  endif()
  target_precompile_headers(${target} REUSE_FROM rlhf_torch_pch)
endfunction()

# rlhf_test(NAME SOURCES ... DEPS ... [TORCH] [LABELS ...])
function(rlhf_test name)
  if(NOT RLHF_BUILD_TESTS)
    return()
  endif()
  cmake_parse_arguments(ARG "TORCH" "" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gmock GTest::gtest_main)
  target_compile_options(${name} PRIVATE ${RLHF_WARNINGS} ${_rlhf_sanitize_flags})
  target_link_options(${name} PRIVATE ${_rlhf_sanitize_flags})
  target_compile_definitions(${name} PRIVATE RLHF_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  if(ARG_TORCH)
    target_link_libraries(${name} PRIVATE rlhf_torch)
    rlhf_torch_pch(${name})
  endif()
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  add_test(NAME ${name} COMMAND ${name} WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  set_tests_properties(${name} PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT 600)
  # Tests labelled `sanitize` also run in the ASan/UBSan build (scripts/test.sh).
  if("sanitize" IN_LIST ARG_LABELS)
    if(NOT TARGET rlhf_sanitized_tests)
      add_custom_target(rlhf_sanitized_tests)
    endif()
    add_dependencies(rlhf_sanitized_tests ${name})
  endif()
endfunction()

# rlhf_proto_library(NAME PROTOS a.proto ... IMPORT_DIR dir [DEPS other_proto_lib])
# Runs protoc + grpc_cpp_plugin (Debian's) and builds the generated sources, including
# the *_mock.grpc.pb.h stubs for unit tests. Output keeps the path below IMPORT_DIR.
function(rlhf_proto_library name)
  cmake_parse_arguments(ARG "" "IMPORT_DIR" "PROTOS;DEPS" ${ARGN})
  set(proto_path --proto_path=${ARG_IMPORT_DIR} --proto_path=${PROJECT_SOURCE_DIR}/proto)
  find_program(GRPC_CPP_PLUGIN grpc_cpp_plugin REQUIRED)
  set(out_dir ${PROJECT_BINARY_DIR}/proto_gen)
  set(srcs "")
  foreach(proto ${ARG_PROTOS})
    file(RELATIVE_PATH rel ${ARG_IMPORT_DIR} ${proto})
    string(REGEX REPLACE "\\.proto$" "" stem ${rel})
    set(gen ${out_dir}/${stem}.pb.cc ${out_dir}/${stem}.pb.h ${out_dir}/${stem}.grpc.pb.cc
            ${out_dir}/${stem}.grpc.pb.h ${out_dir}/${stem}_mock.grpc.pb.h)
    add_custom_command(
      OUTPUT ${gen}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${out_dir}
      COMMAND protobuf::protoc ${proto_path} --cpp_out=${out_dir}
              --grpc_out=generate_mock_code=true:${out_dir}
              --plugin=protoc-gen-grpc=${GRPC_CPP_PLUGIN} ${proto}
      DEPENDS ${proto} protobuf::protoc
      COMMENT "protoc ${rel}")
    list(APPEND srcs ${out_dir}/${stem}.pb.cc ${out_dir}/${stem}.grpc.pb.cc)
  endforeach()
  add_library(${name} STATIC ${srcs})
  target_include_directories(${name} PUBLIC ${out_dir})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS} protobuf::libprotobuf gRPC::grpc++)
  target_compile_options(${name} PUBLIC ${_rlhf_sanitize_flags})
endfunction()
