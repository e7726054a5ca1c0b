#!/usr/bin/env bash
# What the build (and, with "test", the test suite) needs from the system, checked before
# cargo starts: without libclang, RocksDB's bindgen would stop the build minutes in. What is
# missing is installed when that is possible (root with apt-get, as on a fresh CI machine);
# otherwise the script stops at once with one line naming the packages and the command.
# Used by `make build` / `make run` / `make test` and by .ci/run.
set -euo pipefail
what="${1:-build}"

missing=()
# bindgen needs libclang and clang's own headers: on Debian, the libclang-dev package (a bare
# libclang1-NN is not enough); elsewhere, a libclang found where clang-sys looks, or
# LIBCLANG_PATH.
have_libclang() {
    [[ -n "${LIBCLANG_PATH:-}" ]] && return 0
    if command -v dpkg >/dev/null 2>&1; then
        dpkg -s libclang-dev >/dev/null 2>&1
        return
    fi
    compgen -G "/usr/lib/llvm-*/lib/libclang*.so*" >/dev/null ||
        compgen -G "/usr/lib*/libclang*.so*" >/dev/null
}
have_libclang || missing+=(libclang-dev)
command -v make >/dev/null 2>&1 || missing+=(make)
command -v g++ >/dev/null 2>&1 || missing+=(g++)
if [[ "$what" == test ]]; then
    command -v valgrind >/dev/null 2>&1 || missing+=(valgrind)
    command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
fi

if ((${#missing[@]})); then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "installing ${missing[*]} (apt-get)" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
    else
        echo "resman: missing ${missing[*]}; install with: sudo apt-get install ${missing[*]}" >&2
        exit 1
    fi
fi

for tool in cargo go; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "resman: '$tool' is not on PATH (Rust stable from rustup, Go 1.24 or newer from go.dev)" >&2
        exit 1
    fi
done
