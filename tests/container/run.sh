#!/usr/bin/env bash
# Container and deployment test for countersd (issue 5). Run by .ci/run after
# `make test`:
#
#   tests/container/run.sh [BUILD_DIR]       (default: build/)
#
# BUILD_DIR holds the host-built counterctl (client/counterctl), which talks
# to the containers through the published port, and countersd
# (server/countersd), which systemd-analyze checks the unit against.
#
# This file is the entry point; the work is in three parts, run in this
# order, each of which says at its top what it checks and can also be run
# alone with the same argument:
#   static_checks.sh  yamllint and schema checks of deploy/, systemd-analyze
#                     of the unit (no image, no container);
#   build_image.sh    the debootstrapped base image and `podman build` of
#                     deploy/Dockerfile, and the image's metadata;
#   scenarios.sh      containers on a named volume (SIGKILL and SIGTERM under
#                     load, hardened flags), deploy/compose.yaml with
#                     podman-compose, deploy/countersd.service under systemd.
# lib.sh holds what they share: the PASS/FAIL bookkeeping, the cleanup, the
# podman flags, the prerequisites step (deploy/install-deps.sh --container)
# and the summary.
#
# Podman here needs `--runtime runc` and explicit `--ulimit nofile/nproc`
# within the current limits (conmon runs with nproc capped at 32768, so
# runc cannot raise it to the shell's limit). These flags live only in lib.sh:
# deploy/ stays what a Docker user runs as it is.
#
# Traffic goes only to 127.0.0.1. Every step has a timeout, and the whole run
# is bounded by COUNTERSD_CT_TIMEOUT seconds (default 1800). Containers and
# volumes it creates are removed on exit; the built image stays as a layer
# cache (localhost/countersd:ci-test). The last line is "N passed, N failed".
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/container/lib.sh
source "$here/lib.sh"
# shellcheck source=tests/container/static_checks.sh
source "$here/static_checks.sh"
# shellcheck source=tests/container/build_image.sh
source "$here/build_image.sh"
# shellcheck source=tests/container/scenarios.sh
source "$here/scenarios.sh"
ct_run "static_checks build_image scenarios" "$@"
