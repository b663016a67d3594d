#!/usr/bin/env bash
# Installs the Debian 12 packages countersd needs to build and test, and
# nothing else. Idempotent: it only calls apt-get when something is missing,
# and runs `apt-get update` first in that case.
#
#   deploy/install-deps.sh            build + test dependencies
#   deploy/install-deps.sh --bench    also the peers of `make bench`
#   deploy/install-deps.sh --container also podman/runc/debootstrap
#   deploy/install-deps.sh --fuzz     also clang and its libFuzzer runtime
set -euo pipefail

pkgs=(
  build-essential cmake make pkg-config
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  libabsl-dev zlib1g-dev libssl-dev openssl
  libgtest-dev libgmock-dev libbenchmark-dev
  python3 python3-grpcio python3-protobuf python3-h2
  libfaketime
  libsystemd-dev
  libmicrohttpd-dev prometheus
)
for arg in "$@"; do
  case "$arg" in
    --bench) pkgs+=(redis-server redis-tools memcached linux-perf) ;;
    --container) pkgs+=(podman runc debootstrap uidmap slirp4netns yamllint systemd podman-compose) ;;
    --lint) pkgs+=(clang-format clang-tidy) ;;
    --fuzz) pkgs+=(clang libclang-rt-14-dev) ;;
    *) echo "install-deps: unknown option '$arg'" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: need root to apt-get install: ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
