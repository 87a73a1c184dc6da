#!/usr/bin/env bash
# Attention Studio set-up: installs what is missing from Debian, builds, then
#   ./dev.sh run    starts the program on the embedded demo model
#   ./dev.sh test   runs every test (release build, then core tests under ASan+UBSan)
set -euo pipefail
cd "$(dirname "$0")"

PACKAGES=(cmake ninja-build g++ ccache pkg-config qt6-base-dev qt6-svg-dev libqcustomplot-dev
          libeigen3-dev libhdf5-dev nlohmann-json3-dev libcli11-dev libbenchmark-dev)
# The tests also read exported HDF5 models with h5py, as a user would.
TEST_PACKAGES=(python3-h5py)

install_missing() {
  local missing=() p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "Installing: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

build() {  # $1 = preset
  cmake --preset "$1" >/dev/null
  cmake --build --preset "$1"
}

case "${1:-}" in
  run)
    install_missing
    build release
    if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
      # The explorer on the embedded demo pair (teacher and student).
      exec build/release/app/attnstudio
    fi
    echo "No display: running the command-line tool on the demo teacher instead." >&2
    cli=build/release/app/attnstudio-cli
    demo=resources/demo/teacher
    "$cli" inspect "$demo"
    "$cli" attention "$demo" --text "$(head -n 1 resources/demo/demo_text.txt)" \
      --out build/demo-attention.h5
    ;;
  test)
    PACKAGES+=("${TEST_PACKAGES[@]}")
    install_missing
    build release
    ctest --preset release
    # The engine's tests again under AddressSanitizer + UndefinedBehaviorSanitizer.
    cmake --preset asan-ubsan >/dev/null
    cmake --build --preset asan-ubsan --target attn_core_tests
    ctest --preset asan-ubsan
    ;;
  *)
    echo "usage: $0 run | test" >&2
    exit 2
    ;;
esac
