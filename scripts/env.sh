# Sourced by the scripts in this directory: checks what the build needs from the system and
# installs it when it can, else stops with the exact command to run. Also picks the shared
# cargo target directory, so RocksDB's C++ (about 20 minutes on 2 cores) is built once.

set -euo pipefail

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/augur/target}"
mkdir -p "$CARGO_TARGET_DIR"

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo is not installed. Install a Rust toolchain first:" >&2
  echo "  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh" >&2
  exit 1
fi

have_libclang() {
  ldconfig -p 2>/dev/null | grep -q 'libclang[-.0-9]*\.so' \
    || ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1
}

missing=()
command -v clang >/dev/null 2>&1 || missing+=(clang)
have_libclang || missing+=(libclang-dev)
command -v c++ >/dev/null 2>&1 || missing+=(g++)

if [ "${#missing[@]}" -gt 0 ]; then
  cmd="apt-get update && apt-get install -y ${missing[*]}"
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing build dependencies for RocksDB: ${missing[*]}" >&2
    DEBIAN_FRONTEND=noninteractive sh -c "$cmd" >&2
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    echo "installing build dependencies for RocksDB: ${missing[*]}" >&2
    sudo DEBIAN_FRONTEND=noninteractive sh -c "$cmd" >&2
  else
    echo "error: building RocksDB needs ${missing[*]}. Run:" >&2
    echo "  sudo sh -c '$cmd'" >&2
    exit 1
  fi
fi

if [ ! -d "$CARGO_TARGET_DIR/release/build" ] || ! ls "$CARGO_TARGET_DIR"/release/build/librocksdb-sys-*/output >/dev/null 2>&1; then
  echo "note: the first build compiles RocksDB from source (about 20 minutes on 2 cores); later builds reuse $CARGO_TARGET_DIR" >&2
fi
