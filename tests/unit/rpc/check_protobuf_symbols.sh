#!/usr/bin/env bash
# Usage: check_protobuf_symbols.sh LIBTORCH_CPU_SO LIBPROTOBUF_SO
# Fails if libtorch_cpu.so exports a google::protobuf symbol that Debian's libprotobuf
# also defines: the dynamic linker would bind one library's calls to the other's code.
set -euo pipefail
torch_lib=$1 proto_lib=$2
[ -f "$torch_lib" ] && [ -f "$proto_lib" ] || { echo "missing $torch_lib or $proto_lib"; exit 1; }
syms() { nm -D --defined-only "$1" | awk '{print $3}' | grep '^_ZN6google8protobuf' | sort -u; }
both=$(comm -12 <(syms "$torch_lib") <(syms "$proto_lib") | c++filt)
echo "libtorch_cpu exports $(syms "$torch_lib" | wc -l) google::protobuf symbols" \
     "(its bundled ONNX messages); $(basename "$proto_lib") exports $(syms "$proto_lib" | wc -l)"
if [ -n "$both" ]; then
  echo "CONFLICT: symbols defined by both libraries:"; echo "$both"; exit 1
fi
echo "OK: no conflicting google::protobuf symbols"
