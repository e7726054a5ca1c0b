#!/usr/bin/env bash
# `make install` into a temporary PREFIX, then what a C user does with it: pkg-config gives the
# flags; a program linked against the shared library records its SONAME (libresman.so.MAJOR)
# and runs from the installed directory; a program linked against the static archive needs no
# libresman at run time and runs too. The program is examples/c/quickstart.c.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tmp="$(mktemp -d /tmp/resman-install.XXXXXX)"
trap 'rm -rf "$tmp" /tmp/resman-quickstart' EXIT
fail() { echo "install.sh: $*" >&2; exit 1; }

make -C "$repo" --no-print-directory install PREFIX="$tmp/prefix" >/dev/null
lib="$tmp/prefix/lib"
version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/Cargo.toml" | head -n 1)"
major="${version%%.*}"
for f in libresman.a "libresman.so.$version" pkgconfig/resman.pc; do
    [[ -f "$lib/$f" ]] || fail "$lib/$f not installed"
done
[[ "$(readlink "$lib/libresman.so.$major")" == "libresman.so.$version" ]] || fail "libresman.so.$major link"
[[ "$(readlink "$lib/libresman.so")" == "libresman.so.$major" ]] || fail "libresman.so link"
for h in resman.h resman.hpp; do
    cmp -s "$tmp/prefix/include/$h" "$repo/$([[ $h == resman.h ]] && echo include || echo bindings/cpp)/$h" ||
        fail "$h differs from the source tree's"
done
soname="$(readelf -d "$lib/libresman.so.$version" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')"
[[ "$soname" == "libresman.so.$major" ]] || fail "SONAME is '$soname', want libresman.so.$major"

export PKG_CONFIG_PATH="$lib/pkgconfig"
[[ "$(pkg-config --modversion resman)" == "$version" ]] || fail "pkg-config --modversion"
cflags=(-std=c11 -Wall -Wextra -Werror)

# Shared: the program needs libresman.so.MAJOR, found in the installed directory.
# shellcheck disable=SC2046
gcc "${cflags[@]}" -o "$tmp/shared" "$repo/examples/c/quickstart.c" $(pkg-config --cflags --libs resman)
readelf -d "$tmp/shared" | grep -q "NEEDED.*\[libresman.so.$major\]" || fail "shared: no NEEDED libresman.so.$major"
rm -rf /tmp/resman-quickstart
LD_LIBRARY_PATH="$lib" "$tmp/shared" >/dev/null || fail "the shared build did not run"

# Static: the archive, with the private libraries pkg-config --static lists.
# shellcheck disable=SC2046
gcc "${cflags[@]}" -o "$tmp/static" "$repo/examples/c/quickstart.c" $(pkg-config --cflags resman) \
    $(pkg-config --static --libs resman | sed 's/-lresman\b/-l:libresman.a/')
if readelf -d "$tmp/static" | grep -q "libresman"; then fail "static: still needs libresman"; fi
rm -rf /tmp/resman-quickstart
"$tmp/static" >/dev/null || fail "the static build did not run"
echo "install.sh: installed, SONAME $soname, pkg-config $version, shared and static builds run"
