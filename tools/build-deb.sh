#!/bin/sh
# Build the Debian source and binary packages the way a distribution does: the release tarball
# (`make dist` in this configured tree) becomes ramp-cl_VERSION.orig.tar.gz, debian/ goes into
# its unpacked copy, and dpkg-buildpackage builds there, unsigned.
#   tools/build-deb.sh OUTDIR [--twice]
# OUTDIR receives the .dsc, .orig.tar.gz, .debian.tar.xz, the .deb files, .buildinfo and
# .changes. DEB_BUILD_OPTIONS passes through (nocheck skips `make check`).
# --twice: build again from the same source in a directory at another path, with another umask,
# time zone and locale (variations Debian's reproducible-builds checks apply), and fail unless
# every .deb is byte-identical to the first build's.
set -eu
case $#:${2:-} in
1: | 2:--twice) ;;
*) echo "usage: tools/build-deb.sh OUTDIR [--twice]" >&2; exit 2 ;;
esac
out=$(mkdir -p "$1" && cd "$1" && pwd)
twice=${2:-}
top=$(cd "$(dirname "$0")/.." && pwd)
version=$(dpkg-parsechangelog -l "$top/debian/changelog" -S Version)
upstream=${version%-*}
[ -f "$top/Makefile" ] || { echo "build-deb.sh: configure the tree first (./configure)" >&2; exit 1; }
make -C "$top" -s dist
tarball=$top/ramp-cl-$upstream.tar.gz
[ -f "$tarball" ] || {
    echo "build-deb.sh: no $tarball: debian/changelog's upstream version $upstream is not" \
        "configure.ac's" >&2
    exit 1
}

# build DIR: the source package and the binaries from a fresh copy, results in DIR.
build() {
    rm -rf "$1/ramp-cl-$upstream"
    cp "$tarball" "$1/ramp-cl_$upstream.orig.tar.gz"
    tar -C "$1" -xzf "$tarball"
    cp -R "$top/debian" "$1/ramp-cl-$upstream/"
    (cd "$1/ramp-cl-$upstream" && dpkg-buildpackage -us -uc)
}

build "$out"
[ "$twice" = --twice ] || exit 0
second=$out/second-build/at/another/path
mkdir -p "$second"
(umask 0002 && TZ=Pacific/Kiritimati LC_ALL=C.UTF-8 LANG=C.UTF-8 build "$second")
status=0
for deb in "$out"/*.deb; do
    name=$(basename "$deb")
    if cmp "$deb" "$second/$name"; then
        echo "reproducible: $name $(sha256sum <"$deb" | cut -d' ' -f1)"
    else
        echo "NOT reproducible: $name differs between the two builds"
        command -v diffoscope >/dev/null && diffoscope "$deb" "$second/$name"
        status=1
    fi
done
exit $status
