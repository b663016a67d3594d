#!/usr/bin/env bash
# The images, the second part of the container test (run by
# tests/container/run.sh; see there for the whole):
#  1. The base image: localhost/countersd-base:bookworm, made with
#     `debootstrap --variant=minbase bookworm` from the Debian mirror this
#     machine's apt uses, and `podman import`. Reused if podman has it; the
#     rootfs tarball is cached in $COUNTERSD_TEST_CACHE
#     (/var/cache/countersd-test); neither cache is required.
#  2. `podman build` of deploy/Dockerfile on that base; reports time and size.
#  3. Checks the image's metadata (user, volume, port, healthcheck, stop
#     signal) and that the runtime image holds no compiler.
# Sets image_ok=true if the image was built; the scenarios need it.

build_image() {
  make_base_image
  build_countersd_image
  check_image
}

# The Debian mirror this machine's apt uses for bookworm (never hard-coded).
debian_mirror() {
  local m
  if [ -n "${COUNTERSD_DEBIAN_MIRROR:-}" ]; then echo "$COUNTERSD_DEBIAN_MIRROR"; return; fi
  m=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 'Identifier: Packages' 2>/dev/null |
      awk '$2 == "bookworm" { print $1; exit }')
  if [ -z "$m" ]; then  # one-line .list files, then deb822 .sources files
    m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
        awk '$1 == "deb" { sub(/^deb +(\[[^]]*\] +)?/, ""); if ($2 == "bookworm") { print $1; exit } }')
  fi
  if [ -z "$m" ]; then
    m=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '
      function flush() { if (types ~ /(^| )deb( |$)/ && suites ~ /(^| )bookworm( |$)/ && uri != "") { print uri; found = 1; exit } types = suites = uri = "" }
      /^[ \t]*#/ { next }
      /^[ \t]*$/ { flush(); next }
      tolower($1) == "types:"  { $1 = ""; types = $0 }
      tolower($1) == "suites:" { $1 = ""; suites = $0 }
      tolower($1) == "uris:"   { uri = $2 }
      END { if (!found) flush() }')
  fi
  [ -n "$m" ] && echo "$m"
}

ensure_base_image() {
  if podman image exists "$BASE_IMAGE"; then
    fact "base image: $BASE_IMAGE already in podman, reused"
    return 0
  fi
  local tarball=$CACHE/bookworm-minbase.tar
  if [ -s "$tarball" ] && tar -tf "$tarball" ./etc/debian_version >/dev/null 2>&1; then
    if timeout 300 podman import --quiet --change 'CMD ["/bin/bash"]' "$tarball" "$BASE_IMAGE" >/dev/null; then
      fact "base image: imported from cached rootfs $tarball"
      return 0
    fi
    echo "cached rootfs $tarball did not import; making a new one" >&2
  fi
  local mirror
  mirror=$(debian_mirror) || true
  if [ -z "$mirror" ]; then
    echo "no bookworm mirror found in apt's configuration (set COUNTERSD_DEBIAN_MIRROR)" >&2
    return 1
  fi
  local t0=$SECONDS rootfs=$WORK/rootfs
  echo "debootstrap --variant=minbase bookworm from $mirror"
  if ! timeout 1200 debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$WORK/debootstrap.log" 2>&1; then
    tail -n 20 "$WORK/debootstrap.log" >&2
    return 1
  fi
  # Like the official slim image: no package cache, no apt lists.
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  local out=$WORK/bookworm-minbase.tar
  tar --numeric-owner --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' \
      -C "$rootfs" -cf "$out" . || return 1
  rm -rf "$rootfs"
  if mkdir -p "$CACHE" 2>/dev/null && cp "$out" "$tarball.tmp.$$" 2>/dev/null; then
    mv -f "$tarball.tmp.$$" "$tarball" && echo "cached rootfs in $tarball"
  else
    rm -f "$tarball.tmp.$$"
    echo "note: could not cache the rootfs in $CACHE (not required)"
  fi
  timeout 300 podman import --quiet --change 'CMD ["/bin/bash"]' "$out" "$BASE_IMAGE" >/dev/null || return 1
  rm -f "$out"
  fact "base image: debootstrapped and imported in $((SECONDS - t0)) s"
}

make_base_image() {
  step "base image"
  if ensure_base_image; then
    ok "base image $BASE_IMAGE (debootstrap minbase bookworm)"
  else
    bad "base image $BASE_IMAGE (debootstrap minbase bookworm)"
  fi
}

build_countersd_image() {
  step "podman build -f deploy/Dockerfile"
  image_ok=false
  t0=$SECONDS
  if timeout 1500 podman build --runtime runc --format docker \
       --build-arg "BASE_IMAGE=$BASE_IMAGE" -f "$ROOT/deploy/Dockerfile" -t "$IMAGE" "$ROOT" \
       >"$WORK/build.log" 2>&1; then
    secs=$((SECONDS - t0))
    size=$(podman image inspect -f '{{.Size}}' "$IMAGE")
    cached=$(grep -c 'Using cache' "$WORK/build.log")
    fact "image build: ${secs} s ($cached steps from cache), image size $((size / 1000000)) MB ($size bytes)"
    fact "runtime packages: $(awk '/^runtime packages:/ { on = 1; next } on && /^[a-z0-9][a-z0-9.+-]*$/ { printf "%s ", $0; next } { on = 0 }' "$WORK/build.log")"
    ok "image builds from deploy/Dockerfile on the local base"
    image_ok=true
    # Dangling layers of builds older than 6 h (keeps the latest builds' cache).
    podman image prune -f --filter until=6h >/dev/null 2>&1
  else
    tail -n 40 "$WORK/build.log"
    bad "image builds from deploy/Dockerfile on the local base"
  fi
}

check_image() {
  if $image_ok; then
    meta=$(podman image inspect -f '{{.Config.User}}|{{.Config.StopSignal}}|{{range $k, $v := .Config.ExposedPorts}}{{$k}} {{end}}|{{range $k, $v := .Config.Volumes}}{{$k}} {{end}}|{{json .Config.Entrypoint}}' "$IMAGE")
    health=$(podman image inspect -f '{{json .HealthCheck}}' "$IMAGE" 2>/dev/null)
    [ "$health" = null ] || [ -z "$health" ] && health=$(podman image inspect -f '{{json .Config.Healthcheck}}' "$IMAGE" 2>/dev/null)
    echo "  metadata: $meta"
    echo "  healthcheck: $health"
    IFS='|' read -r m_user m_stop m_ports m_vols m_entry <<<"$meta"
    if [ "$m_user" = "10001:10001" ] && [ "$m_stop" = SIGTERM ] && [[ "$m_ports" == *50051/tcp* ]] &&
       [[ "$m_vols" == */var/lib/countersd* ]] && [[ "$m_entry" == '["countersd-entrypoint"]' ]] &&
       grep -q -- '--listen=0.0.0.0:50051' "$ROOT/deploy/countersd-entrypoint.sh" &&
       [[ "$health" == *counterctl*health* ]]; then
      ok "image metadata: USER 10001, SIGTERM, 50051, VOLUME, ENTRYPOINT (countersd-entrypoint: 0.0.0.0:50051), HEALTHCHECK"
    else
      bad "image metadata: USER 10001, SIGTERM, 50051, VOLUME, ENTRYPOINT (countersd-entrypoint: 0.0.0.0:50051), HEALTHCHECK"
    fi
    if out=$("${PODMAN[@]}" run --rm "${RUN_FLAGS[@]}" --entrypoint /bin/sh "$IMAGE" -c \
          'command -v countersd counterctl; for t in c++ g++ cmake protoc; do command -v $t && exit 1; done; exit 0' 2>&1); then
      ok "runtime image has countersd and counterctl, no compiler or cmake"
    else
      echo "$out"
      bad "runtime image has countersd and counterctl, no compiler or cmake"
    fi
  fi
}

# Run alone: tests/container/build_image.sh [BUILD_DIR]
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  # shellcheck source=tests/container/lib.sh
  source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
  ct_run "build_image" "$@"
fi
