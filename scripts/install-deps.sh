#!/usr/bin/env bash
# Installs every Debian 12 package Spoor needs to build, test, benchmark and
# run its demo. Idempotent: packages already present are skipped by apt.
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake pkg-config git clang-format
  # sanitizer and fuzzing builds (scripts/sanitize.sh, scripts/fuzz.sh)
  clang libclang-rt-14-dev
  # core libraries
  libopencv-dev libopencv-contrib-dev libfaiss-dev libopenblas-dev libvips-dev
  libsqlite3-dev libsqlitecpp-dev libssl-dev libtbb-dev
  libtesseract-dev tesseract-ocr-eng  # text in ad images (core/src/text)
  # executables: flags, logs, JSON, config
  libcli11-dev libspdlog-dev libfmt-dev nlohmann-json3-dev libtomlplusplus-dev
  # gRPC service
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc libcivetweb-dev
  python3-grpcio python3-protobuf
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev python3-opencv python3-numpy openssl curl
  chromium  # renders case reports (tests/python/test_report.py)
  # real photos used by tests, the demo and the benchmark corpus
  opencv-doc tuxpaint-stamps-default plasma-workspace-wallpapers mate-backgrounds
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${#missing[@]} packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
