#!/bin/sh
# Install the Debian packages ramp-cl needs to build, test and run (sudo when not root).
# Idempotent: apt-get skips what is already installed.
#   --fuzz             also clang with libFuzzer, for tests/fuzz/run.sh
#   --implementations  also the other OpenCL implementations the suite runs on: Mesa rusticl
#                      (mesa-opencl-icd; RUSTICL_ENABLE=llvmpipe) and the Oclgrind simulator
#   --package          also what building, checking and testing the Debian package takes
#                      (tools/build-deb.sh, lintian, debian/tests): debhelper, lintian,
#                      diffoscope-minimal (shows what differs between two builds), python3-torch
#   --mpi              also Debian's default MPI (Open MPI), for data parallelism across devices
#                      (tests/mpi.sh)
set -e
if [ "$(id -u)" -eq 0 ]; then SUDO=; else SUDO=sudo; fi
PACKAGES="build-essential autoconf automake libtool pkg-config
  ocl-icd-opencl-dev opencl-headers pocl-opencl-icd clinfo
  libclblast-dev libyaml-dev zlib1g-dev check
  dataset-fashion-mnist"
for opt in "$@"; do
    case $opt in
        --fuzz) PACKAGES="$PACKAGES clang libclang-rt-dev" ;;
        --implementations) PACKAGES="$PACKAGES mesa-opencl-icd oclgrind" ;;
        --package) PACKAGES="$PACKAGES debhelper lintian diffoscope-minimal python3-torch" ;;
        --mpi) PACKAGES="$PACKAGES mpi-default-dev mpi-default-bin" ;;
        *) echo "install-deps.sh: unknown option $opt (--fuzz, --implementations, --package, --mpi)" >&2
           exit 2 ;;
    esac
done
missing=
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
        missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "installing:$missing"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
fi
