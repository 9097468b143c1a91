# Shared by Deploy/quickstart and Deploy/test: install what is missing, then start a
# throwaway cluster that is removed when the calling script exits.
set -euo pipefail
PAYHOOK_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PAYHOOK_ROOT

payhook_install_packages() {
  [ -d /opt/swift/usr/bin ] && case ":$PATH:" in *":/opt/swift/usr/bin:"*) ;; *) PATH="/opt/swift/usr/bin:$PATH" ;; esac
  local missing=()
  command -v pkg-config >/dev/null || missing+=(pkg-config)
  [ -f /usr/include/postgresql/libpq-fe.h ] || missing+=(libpq-dev)
  [ -f /usr/include/openssl/evp.h ] || missing+=(libssl-dev)
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
  command -v runuser >/dev/null || missing+=(util-linux)
  command -v curl >/dev/null || missing+=(curl)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "==> installing ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  command -v swift >/dev/null || { echo "swift is not on PATH" >&2; exit 1; }
}

# Starts a cluster in .run/ (or /tmp when the server's account cannot reach .run/) and
# exports PAYHOOK_CLUSTER_DIR and PAYHOOK_ADMIN_URL; removed again on exit.
payhook_start_cluster() {
  local base="$PAYHOOK_ROOT/.run"
  mkdir -p "$base"
  PAYHOOK_CLUSTER_DIR=$(mktemp -d "$base/pg.XXXXXX")
  local problem
  if ! problem=$("$PAYHOOK_ROOT/Deploy/pg-cluster" start "$PAYHOOK_CLUSTER_DIR" 2>&1 >/dev/null); then
    echo "==> $problem; using /tmp instead"
    rm -rf "$PAYHOOK_CLUSTER_DIR"
    PAYHOOK_CLUSTER_DIR=$(mktemp -d /tmp/payhook-pg.XXXXXX)
    "$PAYHOOK_ROOT/Deploy/pg-cluster" start "$PAYHOOK_CLUSTER_DIR" >/dev/null
  fi
  export PAYHOOK_CLUSTER_DIR
  trap 'payhook_stop_all' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  PAYHOOK_ADMIN_URL=$("$PAYHOOK_ROOT/Deploy/pg-cluster" url "$PAYHOOK_CLUSTER_DIR" postgres)
  export PAYHOOK_ADMIN_URL
  echo "==> PostgreSQL on $PAYHOOK_ADMIN_URL (data in $PAYHOOK_CLUSTER_DIR)"
}

PAYHOOK_CHILD_PIDS=()
payhook_stop_all() {
  local pid
  for pid in "${PAYHOOK_CHILD_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PAYHOOK_CHILD_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  [ -n "${PAYHOOK_CLUSTER_DIR:-}" ] && "$PAYHOOK_ROOT/Deploy/pg-cluster" remove "$PAYHOOK_CLUSTER_DIR"
}

# A loopback port nothing listens on now (another process could still take it before us).
payhook_free_port() {
  local port
  while true; do
    port=$(( 20000 + (RANDOM * 32768 + RANDOM) % 40000 ))
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
  done
}
