#!/usr/bin/env bash
# Installs every system package ASG Lab needs on Debian 12 (run as root). Idempotent: a second run
# installs nothing and takes about a second.
#
# Why these and not others (see docs/dependencies.md):
#   libopenblas0-openmp  without it libtorch falls back to reference BLAS (~30x slower matmul);
#                        the -pthread variant must NOT be installed (it oversubscribes with OpenMP).
#   libgif-dev/libwebp-dev  OpenCV 4.6 cannot read GIF alpha nor animated WebP; we use giflib/libwebp.
#   libopencv-*-dev      only the four modules used (core, imgproc, imgcodecs, videoio): the full
#                        libopencv-dev pulls every module's -dev package (+357 MB) for a CMake config file.
#   libarchive-dev       tar shards (WebDataset layout) streamed without unpacking.
#   libicu-dev           CLIP's BPE tokenizer: Unicode lower-casing and its \p{L}/\p{N} split pattern.
#   python3-pil          the Python side of bench/loader.cpp (the same decode + transform with PIL).
#   python3-scipy        the reference Fréchet distance (numpy.cov + scipy sqrtm, as pytorch-fid) that the
#                        Fréchet tests and bench/frechet.cpp compare against.
#   libssl-dev           sha256 of configs, plugin libraries and artifacts (libcrypto).
#   libcpp-httplib-dev   asg serve: the read-only web view of the registry.
#   chromium, chromium-driver  the tests open the HTML leaderboard and asg serve's pages in headless Chromium
#                        (driven over WebDriver) to check sorting, inline samples, escaping and live curves.
set -euo pipefail

packages=(
  # toolchain
  g++ cmake ninja-build pkg-config git ca-certificates
  # tensors
  libtorch-dev libopenblas0-openmp
  # plugin loading, config, CLI, formatting, registry, hashing
  libboost-dev libtomlplusplus-dev libcli11-dev libfmt-dev nlohmann-json3-dev libsqlite3-dev libssl-dev
  # sticker media: GIF/WebP decoders, OpenCV for PNG/JPEG/BMP, video, resize, colour and k-means, tar shards
  libgif-dev libwebp-dev libopencv-core-dev libopencv-imgproc-dev libopencv-imgcodecs-dev libopencv-videoio-dev
  libarchive-dev
  # text: CLIP's tokenizer
  libicu-dev
  # tests; python3-torch runs the Python side of bench/vs_python.cpp (the same LibTorch 1.13)
  libgtest-dev python3-torch python3-pil python3-scipy chromium chromium-driver
  # the registry's web view
  libcpp-httplib-dev
)

if [ "$(id -u)" -ne 0 ]; then
  echo "setup.sh: must run as root (it installs Debian packages with apt-get)" >&2
  exit 2
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# The pthread OpenBLAS wins the libblas alternative when both are present and then fights OpenMP for
# the cores; make sure the OpenMP one is what libtorch gets.
if dpkg-query -W -f='${Status}' libopenblas0-pthread 2>/dev/null | grep -q "install ok installed"; then
  echo "setup.sh: note: libopenblas0-pthread is installed; pointing libblas at the OpenMP variant" >&2
  for alt in libblas.so.3-x86_64-linux-gnu liblapack.so.3-x86_64-linux-gnu; do
    path=$(update-alternatives --list "$alt" 2>/dev/null | grep openblas-openmp | head -n1 || true)
    [ -n "$path" ] && update-alternatives --set "$alt" "$path" >/dev/null
  done
fi
echo "setup.sh: all packages present"
