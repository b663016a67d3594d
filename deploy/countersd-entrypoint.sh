#!/bin/sh
# The container image's entrypoint: runs countersd on 0.0.0.0:50051 with its
# data on /var/lib/countersd, and with a token by default.
#
#   COUNTERS_TOKEN=<token>  (make one with `counterctl token new`): the
#       entrypoint writes an auth file admitting that token as admin
#       (`counterctl token hash`, the SHA-256 only) and adds --auth-file. The
#       same variable makes `counterctl` inside the container send it.
#   --auth-file=PATH among the arguments (e.g. a mounted Secret, as in
#       deploy/k8s/): used as it is; COUNTERS_TOKEN is then not needed.
#   Neither: refused, saying how to fix it.
# Then exec, so that countersd is PID 1 and gets SIGTERM itself.
set -eu

auth_given=false
for arg in "$@"; do
  case "$arg" in
    --auth-file | --auth-file=* | --auth_file | --auth_file=*) auth_given=true ;;
    --allow-unauthenticated-network-access | --allow_unauthenticated_network_access) auth_given=true ;;
  esac
done

if ! $auth_given; then
  if [ -z "${COUNTERS_TOKEN:-}" ]; then
    echo "countersd-entrypoint: no credentials: set COUNTERS_TOKEN to a token (counterctl token new" \
      "prints one), or mount an auth file and pass --auth-file=PATH (deploy/auth.example)" >&2
    exit 2
  fi
  auth="${TMPDIR:-/tmp}/countersd-auth"
  umask 077
  counterctl token hash --role=admin >"$auth"
  set -- "--auth-file=$auth" "$@"
fi

exec countersd --listen=0.0.0.0:50051 --data-dir=/var/lib/countersd "$@"
