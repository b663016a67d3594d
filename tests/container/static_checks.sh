#!/usr/bin/env bash
# Static checks of deploy/, the first part of the container test (run by
# tests/container/run.sh; see there for the whole): yamllint on
# deploy/compose.yaml and deploy/k8s/*.yaml; a schema check of the compose
# file (dclint, the compose-spec schema) and of the manifests
# (kubernetes-models: JSON schema + strict unknown-field check with tsc),
# both from npm, and proof that both reject a misspelt field;
# `systemd-analyze verify` and `systemd-analyze security` on
# deploy/countersd.service. Needs no image and no container.

static_checks() {
  step "static checks of deploy/"
  MANIFESTS=("$ROOT"/deploy/k8s/*.yaml)
  check_yamllint
  check_schemas
  check_systemd_unit
}

check_yamllint() {
  if command -v yamllint >/dev/null; then
    if yamllint -s -c "$ROOT/tests/container/yamllint.yaml" "$ROOT/deploy/compose.yaml" "${MANIFESTS[@]}"; then
      ok "yamllint: compose.yaml and k8s/*.yaml"
    else
      bad "yamllint: compose.yaml and k8s/*.yaml"
    fi
  else
    bad "yamllint: compose.yaml and k8s/*.yaml" "yamllint not installed"
  fi
}

# npm validators, installed from tests/container/package-lock.json into a
# cache directory (reinstalled when the lock file changes).
check_schemas() {
  NODE_DIR=$CACHE/node-validators
  mkdir -p "$NODE_DIR" 2>/dev/null && [ -w "$NODE_DIR" ] || NODE_DIR=$WORK/node-validators
  mkdir -p "$NODE_DIR"
  node_ready=false
  if command -v npm >/dev/null && command -v node >/dev/null; then
    cp "$ROOT"/tests/container/{package.json,package-lock.json,validate-k8s.mjs} "$NODE_DIR"/
    if [ -d "$NODE_DIR/node_modules" ] && cmp -s "$NODE_DIR/package-lock.json" "$NODE_DIR/.installed-lock"; then
      node_ready=true
    elif (cd "$NODE_DIR" && timeout 600 npm ci --no-audit --no-fund --loglevel=error >"$WORK/npm.log" 2>&1); then
      cp "$NODE_DIR/package-lock.json" "$NODE_DIR/.installed-lock"
      node_ready=true
    else
      tail -n 20 "$WORK/npm.log"
    fi
  fi
  if $node_ready; then
    if (cd "$NODE_DIR" && timeout 120 npx --no-install dclint --max-warnings 0 "$ROOT/deploy/compose.yaml"); then
      ok "compose.yaml: compose-spec schema and dclint rules"
    else
      bad "compose.yaml: compose-spec schema and dclint rules"
    fi
    if (cd "$NODE_DIR" && timeout 120 node validate-k8s.mjs "${MANIFESTS[@]}"); then
      ok "k8s/*.yaml: Kubernetes schema, strict fields, cross-checks"
    else
      bad "k8s/*.yaml: Kubernetes schema, strict fields, cross-checks"
    fi
    # The validators must be able to fail: a misspelt field and a misspelt
    # compose key are rejected.
    sed 's/^\(\s*\)readinessProbe:/\1readinesProbe:/' "$ROOT/deploy/k8s/statefulset.yaml" >"$WORK/bad-sts.yaml"
    sed 's/^\(\s*\)stop_grace_period:/\1stop_grace_perod:/' "$ROOT/deploy/compose.yaml" >"$WORK/bad-compose.yaml"
    if ! (cd "$NODE_DIR" && node validate-k8s.mjs "$WORK/bad-sts.yaml" "$ROOT/deploy/k8s/service.yaml") >/dev/null 2>&1 &&
       ! (cd "$NODE_DIR" && npx --no-install dclint "$WORK/bad-compose.yaml") >/dev/null 2>&1; then
      ok "schema checks reject a misspelt field"
    else
      bad "schema checks reject a misspelt field"
    fi
  else
    bad "compose/k8s schema checks" "npm validators could not be installed (node and npm needed)"
  fi
}

check_systemd_unit() {
  if command -v systemd-analyze >/dev/null; then
    # verify checks that ExecStart's binary exists; point a copy of the unit at
    # the binary just built instead of /usr/local/bin (nothing else changes).
    sed "s#/usr/local/bin/countersd#$DAEMON#" "$ROOT/deploy/countersd.service" >"$WORK/countersd.service"
    if out=$(systemd-analyze verify "$WORK/countersd.service" 2>&1) && [ -z "$out" ]; then
      ok "systemd-analyze verify countersd.service"
    else
      echo "$out"
      bad "systemd-analyze verify countersd.service"
    fi
    if out=$(systemd-analyze security --offline=true --threshold=20 "$WORK/countersd.service" 2>&1); then
      fact "systemd $(echo "$out" | grep -o 'Overall exposure level.*')"
      ok "systemd-analyze security: exposure at most 2.0"
    else
      echo "$out" | tail -n 25
      bad "systemd-analyze security: exposure at most 2.0"
    fi
  else
    bad "systemd-analyze" "not installed (Debian package systemd)"
  fi
}

# Run alone: tests/container/static_checks.sh [BUILD_DIR]
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  # shellcheck source=tests/container/lib.sh
  source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
  ct_run "static_checks" "$@"
fi
