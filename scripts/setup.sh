#!/usr/bin/env bash
# Installs every system package ASG Lab needs on Debian 12 (run as root), then the pinned Python
# environment whose LibTorch the build links (scripts/setup_python.sh: .venv from requirements.lock).
# Idempotent: a second run installs nothing and takes about a second.
#
# Why these and not others (see docs/dependencies.md):
#   python3-venv         the project's Python environment; LibTorch, nvcc and the Python references come
#                        from the pinned wheels in requirements.lock, not from Debian (its LibTorch is 1.13).
#   libgif-dev/libwebp-dev  OpenCV 4.6 cannot read GIF alpha nor animated WebP; we use giflib/libwebp.
#   libopencv-*-dev      only the four modules used (core, imgproc, imgcodecs, videoio): the full
#                        libopencv-dev pulls every module's -dev package (+357 MB) for a CMake config file.
#   libarchive-dev       tar shards (WebDataset layout) streamed without unpacking.
#   libicu-dev           CLIP's BPE tokenizer: Unicode lower-casing and its \p{L}/\p{N} split pattern;
#                        BERT's WordPiece: Unicode categories, NFD accent stripping.
#   libssl-dev           sha256 of configs, plugin libraries and artifacts (libcrypto).
#   libcpp-httplib-dev   asg serve: the read-only web view of the registry.
#   chromium, chromium-driver  the tests open the HTML leaderboard and asg serve's pages in headless Chromium
#                        (driven over WebDriver) to check sorting, inline samples, escaping and live curves.
set -euo pipefail

packages=(
  # toolchain
  g++ cmake ninja-build pkg-config git ca-certificates
  # the Python environment that carries LibTorch (requirements.lock)
  python3 python3-venv
  # plugin loading, config, CLI, formatting, registry, hashing
  libboost-dev libtomlplusplus-dev libcli11-dev libfmt-dev nlohmann-json3-dev libsqlite3-dev libssl-dev
  # sticker media: GIF/WebP decoders, OpenCV for PNG/JPEG/BMP, video, resize, colour and k-means, tar shards
  libgif-dev libwebp-dev libopencv-core-dev libopencv-imgproc-dev libopencv-imgcodecs-dev libopencv-videoio-dev
  libarchive-dev
  # text: CLIP's, BERT's and T5's tokenizers (ICU)
  libicu-dev
  # tests
  libgtest-dev chromium chromium-driver
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

echo "setup.sh: all packages present"
"$(dirname "$0")/setup_python.sh"
