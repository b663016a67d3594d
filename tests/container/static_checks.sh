#!/usr/bin/env bash
# Static checks of deploy/, the first part of the container test (run by
# tests/container/run.sh; see there for the whole): yamllint on
# deploy/compose.yaml and deploy/k8s/*.yaml; a schema check of the compose
# file (dclint, the compose-spec schema) and of the manifests
# (kubernetes-models: JSON schema + strict unknown-field check with tsc;
# the kustomization, PodDisruptionBudget and ServiceMonitor cross-checked
# with the StatefulSet and Service by validate-k8s.mjs), both from npm, and
# proof that both reject a misspelt field and the kustomization a wrong
# image name; with kubectl on the PATH, `kubectl kustomize` of an overlay
# that sets the image; the Grafana dashboard (check_dashboard.py: JSON, its
# data source variable, metric names from docs/metrics.md, PromQL parsed by
# promtool); `systemd-analyze verify` and `systemd-analyze security` on
# deploy/countersd.service. Needs no image and no container.

static_checks() {
  step "static checks of deploy/"
  MANIFESTS=("$ROOT"/deploy/k8s/*.yaml)
  check_yamllint
  check_schemas
  check_kustomize
  check_dashboard
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
    # Each on a copy of the whole folder, so that only the one change differs.
    bad_k8s() {  # $1: a name, $2: file in deploy/k8s, $3: sed expression
      rm -rf "$WORK/$1" && cp -r "$ROOT/deploy/k8s" "$WORK/$1" && sed -i "$3" "$WORK/$1/$2" &&
        ! (cd "$NODE_DIR" && node validate-k8s.mjs "$WORK/$1"/*.yaml) >/dev/null 2>&1
    }
    sed 's/^\(\s*\)stop_grace_period:/\1stop_grace_perod:/' "$ROOT/deploy/compose.yaml" >"$WORK/bad-compose.yaml"
    if bad_k8s bad-sts statefulset.yaml 's/^\(\s*\)readinessProbe:/\1readinesProbe:/' &&
       ! (cd "$NODE_DIR" && npx --no-install dclint "$WORK/bad-compose.yaml") >/dev/null 2>&1; then
      ok "schema checks reject a misspelt field"
    else
      bad "schema checks reject a misspelt field"
    fi
    if bad_k8s bad-kust kustomization.yaml 's/^\(  - name:\) countersd$/\1 countersd-typo/' &&
       bad_k8s bad-res kustomization.yaml 's/^  - pdb.yaml$/  - pdb.yml/' &&
       bad_k8s bad-cpu statefulset.yaml 's/resource: limits.cpu/resource: requests.cpu/'; then
      ok "k8s cross-checks reject a wrong image name, a missing resource, handlers not from limits.cpu"
    else
      bad "k8s cross-checks reject a wrong image name, a missing resource, handlers not from limits.cpu"
    fi
  else
    bad "compose/k8s schema checks" "npm validators could not be installed (node and npm needed)"
  fi
}

# The kustomization sets the image without editing YAML: an overlay of it
# with its own `images:` entry renders the StatefulSet with that image.
# kubectl is not a Debian 12 package (Debian's kubernetes-client 1.20 has no
# kustomize 5), so this runs only where one is installed.
check_kustomize() {
  if command -v kubectl >/dev/null && kubectl kustomize --help >/dev/null 2>&1; then
    mkdir -p "$WORK/kustomize/overlay" && cp -r "$ROOT/deploy/k8s" "$WORK/kustomize/base"
    printf 'resources:\n  - ../base\nimages:\n  - name: countersd\n    newName: %s\n    newTag: "%s"\n' \
      registry.example/countersd 1.2.3 >"$WORK/kustomize/overlay/kustomization.yaml"
    if out=$(timeout 60 kubectl kustomize "$WORK/kustomize/base" 2>&1) &&
       [ "$(echo "$out" | grep -c '^kind:')" -eq 4 ] &&
       out=$(timeout 60 kubectl kustomize "$WORK/kustomize/overlay" 2>&1) &&
       echo "$out" | grep -q '^ *image: registry.example/countersd:1.2.3$'; then
      ok "kubectl kustomize: deploy/k8s renders 4 objects; an overlay's images entry sets the image"
    else
      echo "$out" | tail -n 10
      bad "kubectl kustomize: deploy/k8s renders 4 objects; an overlay's images entry sets the image"
    fi
  else
    skip "kubectl kustomize" "no kubectl with kustomize on the PATH"
  fi
}

# The dashboard's checks, and proof that they fail on a misspelt metric and
# on an expression that does not parse.
check_dashboard() {
  local dash=$ROOT/deploy/grafana/countersd-dashboard.json check=$ROOT/tests/container/check_dashboard.py
  if python3 "$check" "$dash" "$ROOT/docs/metrics.md"; then
    ok "grafana dashboard: JSON, datasource variable, known metrics, PromQL"
  else
    bad "grafana dashboard: JSON, datasource variable, known metrics, PromQL"
  fi
  sed 's/countersd_capacity{/countersd_capacty{/' "$dash" >"$WORK/bad-dash-1.json"
  sed 's/histogram_quantile(0.5, sum/histogram_quantile(0.5,, sum/' "$dash" >"$WORK/bad-dash-2.json"
  if ! python3 "$check" "$WORK/bad-dash-1.json" "$ROOT/docs/metrics.md" >/dev/null &&
     { ! command -v promtool >/dev/null || ! python3 "$check" "$WORK/bad-dash-2.json" >/dev/null; }; then
    ok "dashboard check rejects an unknown metric$(command -v promtool >/dev/null && echo ' and bad PromQL')"
  else
    bad "dashboard check rejects an unknown metric and bad PromQL"
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
