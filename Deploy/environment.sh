# Shared by Deploy/quickstart and Deploy/test: install what is missing, then start a
# throwaway cluster that is removed when the calling script exits.
set -euo pipefail
PAYHOOK_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PAYHOOK_ROOT

# payhook_apt_install PACKAGE...: installs the packages named (none: nothing to do).
payhook_apt_install() {
  [ $# -gt 0 ] || return 0
  echo "==> installing $*"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

payhook_install_packages() {
  [ -d /opt/swift/usr/bin ] && case ":$PATH:" in *":/opt/swift/usr/bin:"*) ;; *) PATH="/opt/swift/usr/bin:$PATH" ;; esac
  local missing=()
  command -v pkg-config >/dev/null || missing+=(pkg-config)
  [ -f /usr/include/postgresql/libpq-fe.h ] || missing+=(libpq-dev)
  [ -f /usr/include/openssl/evp.h ] || missing+=(libssl-dev)
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
  command -v runuser >/dev/null || missing+=(util-linux)
  command -v curl >/dev/null || missing+=(curl)
  payhook_apt_install "${missing[@]}"
  command -v swift >/dev/null || { echo "swift is not on PATH" >&2; exit 1; }
}

# What only the tests need: the Standard Webhooks reference library (it checks Payhook's
# signatures), Debian's Chromium and chromedriver with Selenium (the browser test), and
# schemathesis (the API against docs/openapi.yaml).
payhook_install_test_tools() {
  if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
    payhook_apt_install chromium chromium-driver
  fi
  local package module missing=()
  for package in standardwebhooks:standardwebhooks selenium:selenium schemathesis:schemathesis; do
    module=${package%%:*}
    python3 -c "import $module" 2>/dev/null || missing+=("${package##*:}")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "==> pip install ${missing[*]}"
    python3 -m pip install -q "${missing[@]}" 2>/dev/null || python3 -m pip install -q --break-system-packages "${missing[@]}"
  fi
}

# What Tests/Deploy/package-check needs besides: debootstrap (the image's root filesystem),
# dpkg-dev (dpkg-shlibdeps), systemd (systemd-analyze verify).
payhook_install_deploy_tools() {
  local missing=()
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  command -v dpkg-shlibdeps >/dev/null || missing+=(dpkg-dev)
  command -v systemd-analyze >/dev/null || missing+=(systemd)
  payhook_apt_install "${missing[@]}"
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
  # An if, not `[ ] &&`: with no cluster the function must still succeed (it runs in EXIT traps under set -e).
  if [ -n "${PAYHOOK_CLUSTER_DIR:-}" ]; then "$PAYHOOK_ROOT/Deploy/pg-cluster" remove "$PAYHOOK_CLUSTER_DIR"; fi
}

# A loopback port nothing listens on now (another process could still take it before us).
payhook_free_port() {
  local port
  while true; do
    port=$(( 20000 + (RANDOM * 32768 + RANDOM) % 40000 ))
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
  done
}

# Starts the simulated site, the simulated channels and `payhook run` against DATABASE_URL,
# with keys, payhook.yaml and logs in DIR; waits until the receiver and the site API answer.
# Sets PAYHOOK_BIN, PAYHOOK_CONFIG, PAYHOOK_LISTEN (receiver) and PAYHOOK_API (site API).
# With `tls` the simulated channels serve HTTPS with their own CA (DIR/ca.pem, the channels'
# ca_file in payhook.yaml), as real channels do; without, plain http (insecure_http: true).
# Usage: payhook_start_stack DIR DATABASE_URL [SITE_FAIL_RATE] [tls]
payhook_start_stack() {
  local dir=$1 database_url=$2 fail_rate=${3:-0} tls=() pid
  [ "${4:-}" = tls ] && tls=(--tls)
  PAYHOOK_BIN=$(cd "$PAYHOOK_ROOT" && swift build --show-bin-path)/payhook
  PAYHOOK_DATABASE_URL="$database_url" "$PAYHOOK_BIN" migrate >/dev/null

  "$PAYHOOK_BIN" sim site --dir "$dir" --port "$(payhook_free_port)" --fail-rate "$fail_rate" >"$dir/sim-site.log" 2>&1 &
  PAYHOOK_CHILD_PIDS+=($!)
  pid=$!
  for _ in $(seq 300); do
    [ -f "$dir/site.json" ] && break
    kill -0 "$pid" 2>/dev/null || { payhook_show_logs "$dir"; echo "payhook sim site stopped" >&2; return 1; }
    sleep 0.1
  done

  PAYHOOK_LISTEN="127.0.0.1:$(payhook_free_port)"
  PAYHOOK_API="127.0.0.1:$(payhook_free_port)"
  PAYHOOK_CONFIG="$dir/payhook.yaml"
  "$PAYHOOK_BIN" sim channels --dir "$dir" --port 0 --listen "$PAYHOOK_LISTEN" --api-listen "$PAYHOOK_API" \
    --database-url "$database_url" "${tls[@]}" >"$dir/sim-channels.log" 2>&1 &
  PAYHOOK_CHILD_PIDS+=($!)
  pid=$!
  for _ in $(seq 300); do
    [ -f "$PAYHOOK_CONFIG" ] && break
    kill -0 "$pid" 2>/dev/null || { payhook_show_logs "$dir"; echo "payhook sim channels stopped" >&2; return 1; }
    sleep 0.1
  done

  "$PAYHOOK_BIN" run --config "$PAYHOOK_CONFIG" >"$dir/payhook-run.log" 2>&1 &
  PAYHOOK_CHILD_PIDS+=($!)
  PAYHOOK_RUN_PID=$!
  for _ in $(seq 300); do
    curl -sf "http://$PAYHOOK_LISTEN/readyz" >/dev/null && curl -s -o /dev/null "http://$PAYHOOK_API/v1/orders/x" && break
    kill -0 "$PAYHOOK_RUN_PID" 2>/dev/null || { payhook_show_logs "$dir"; echo "payhook run stopped" >&2; return 1; }
    sleep 0.1
  done
  export PAYHOOK_BIN PAYHOOK_CONFIG PAYHOOK_LISTEN PAYHOOK_API PAYHOOK_RUN_PID
}

# The last lines of each log in DIR (on failure, before the folder goes).
payhook_show_logs() {
  local log
  for log in "$1"/*.log; do
    [ -s "$log" ] || continue
    echo "--- last lines of $(basename "$log")"
    tail -n 20 "$log"
  done
}
