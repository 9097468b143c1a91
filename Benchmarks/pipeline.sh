# Shared by the benchmarks that run the whole pipeline (Benchmarks/e2e, Benchmarks/soak) and
# the receiver's (Benchmarks/receiver, Benchmarks/soak): the release build, the simulated
# channels and Payhook started and waited for, CPU ticks from /proc, the load generator's
# sends file in PostgreSQL, the wrk notify, and matplotlib for the plots.
# Sourced after Deploy/environment.sh.

# Builds payhook in release mode and sets PAYHOOK_BENCH_BIN. SCRATCH_PATH=DIR builds there
# (swift build --scratch-path) instead of the package's .build.
payhook_bench_build() {
  local build=(swift build -c release ${SCRATCH_PATH:+--scratch-path "$SCRATCH_PATH"})
  echo "==> building payhook (release${SCRATCH_PATH:+, in $SCRATCH_PATH})"
  (cd "$PAYHOOK_ROOT" && "${build[@]}" --product payhook)
  PAYHOOK_BENCH_BIN=$(cd "$PAYHOOK_ROOT" && "${build[@]}" --show-bin-path)/payhook
}

# Starts `payhook sim channels` with keys, simulator.json and payhook.yaml in DIR, writing
# receiver.listen LISTEN and database.url DATABASE_URL; waits for payhook.yaml. Sets
# PAYHOOK_SIM_PID. Usage: payhook_bench_start_channels DIR DATABASE_URL LISTEN
# (SIM_CHANNELS_FLAGS: more flags for it, such as "--cross-check when_unverified").
payhook_bench_start_channels() {
  local dir=$1 database_url=$2 listen=$3
  # shellcheck disable=SC2086 # the flags are words
  "$PAYHOOK_BENCH_BIN" sim channels --dir "$dir" --port 0 --listen "$listen" --database-url "$database_url" \
    ${SIM_CHANNELS_FLAGS:-} >"$dir/sim-channels.log" 2>&1 &
  PAYHOOK_CHILD_PIDS+=($!)
  PAYHOOK_SIM_PID=$!
  for _ in $(seq 300); do
    [ -f "$dir/payhook.yaml" ] && return 0
    kill -0 "$PAYHOOK_SIM_PID" 2>/dev/null || { cat "$dir/sim-channels.log" >&2; return 1; }
    sleep 0.1
  done
  echo "payhook sim channels wrote no payhook.yaml in 30 s" >&2
  return 1
}

# Starts `payhook COMMAND --config CONFIG` (run or serve), its log in LOG, and waits until
# the receiver at LISTEN is ready. Sets PAYHOOK_SERVER_PID.
# Usage: payhook_bench_start_payhook COMMAND CONFIG LISTEN LOG
payhook_bench_start_payhook() {
  local command=$1 config=$2 listen=$3 log=$4
  "$PAYHOOK_BENCH_BIN" "$command" --config "$config" >"$log" 2>&1 &
  PAYHOOK_CHILD_PIDS+=($!)
  PAYHOOK_SERVER_PID=$!
  for _ in $(seq 300); do
    curl -sf "http://$listen/readyz" >/dev/null && return 0
    kill -0 "$PAYHOOK_SERVER_PID" 2>/dev/null || { tail -20 "$log" >&2; return 1; }
    sleep 0.1
  done
  echo "payhook $command was not ready in 30 s" >&2
  return 1
}

# Stops one process this script started (SIGTERM, then waits for it).
payhook_bench_stop() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# utime+stime of one process, in clock ticks (0 once it is gone); read without forking,
# so that sampling costs next to nothing.
payhook_ticks() {
  local line fields
  { read -r line <"/proc/$1/stat"; } 2>/dev/null || { echo 0; return; }
  read -r -a fields <<<"${line##*) }"
  echo $(( fields[11] + fields[12] ))
}

# The same for the throwaway cluster: every live child of the postmaster, and the postmaster
# with the children it has reaped (cutime+cstime), so the sum never falls when a backend exits.
payhook_postgres_ticks() {
  local postmaster total=0 file line fields
  postmaster=$(head -1 "$PAYHOOK_CLUSTER_DIR/data/postmaster.pid")
  for file in /proc/[0-9]*/stat; do
    { read -r line <"$file"; } 2>/dev/null || continue
    read -r -a fields <<<"${line##*) }"
    [ "${fields[1]}" = "$postmaster" ] && total=$(( total + fields[11] + fields[12] ))
  done
  { read -r line <"/proc/$postmaster/stat"; } 2>/dev/null || { echo "$total"; return; }
  read -r -a fields <<<"${line##*) }"
  echo $(( total + fields[11] + fields[12] + fields[13] + fields[14] ))
}

# Loads a `payhook sim load --sends-file` CSV into the table bench_sends (replaced).
# Usage: payhook_bench_load_sends DATABASE_URL FILE
payhook_bench_load_sends() {
  psql -q -v ON_ERROR_STOP=1 "$1" -c "SET client_min_messages = warning; DROP TABLE IF EXISTS bench_sends; CREATE TABLE bench_sends (sequence int, out_trade_no text, kind text, channel text, sent_at double precision, status int, latency_us bigint)"
  psql -q -v ON_ERROR_STOP=1 "$1" -c "\\copy bench_sends FROM '$2' CSV HEADER"
}

# Installs wrk with apt when missing.
payhook_bench_install_wrk() {
  command -v wrk >/dev/null && return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq wrk >/dev/null
}

# An Alipay-size notify (~1.2 KB form, a dummy signature: the receiver stores before any
# check) in DIR/body and a wrk script DIR/post.lua that POSTs it.
payhook_bench_wrk_notify() {
  local dir=$1
  python3 - "$dir/body" <<'PY'
import sys, urllib.parse
fields = {"gmt_create": "2026-11-27 10:00:00", "charset": "utf-8", "seller_email": "shop@example.com",
          "subject": "Order payment", "buyer_id": "2088102000000000", "invoice_amount": "88.88",
          "notify_id": "2026112700222100000000000000000000", "fund_bill_list": '[{"amount":"88.88","fundChannel":"ALIPAYACCOUNT"}]',
          "notify_type": "trade_status_sync", "trade_status": "TRADE_SUCCESS", "receipt_amount": "88.88",
          "app_id": "2021000000000001", "buyer_pay_amount": "88.88", "sign_type": "RSA2", "seller_id": "2088000000000001",
          "gmt_payment": "2026-11-27 10:00:01", "notify_time": "2026-11-27 10:00:02", "version": "1.0",
          "out_trade_no": "T2026112700000001", "total_amount": "88.88", "trade_no": "2026112722001400000000000001",
          "auth_app_id": "2021000000000001", "buyer_logon_id": "buy***@example.com", "point_amount": "0.00",
          "sign": "A" * 344}
open(sys.argv[1], "w").write(urllib.parse.urlencode(fields))
PY
  cat >"$dir/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8"
local file = io.open("$dir/body", "rb")
wrk.body = file:read("*a")
file:close()
LUA
}

# Prints a python with matplotlib: python3's own, else a venv at .run/plot-venv (made and
# filled from PyPI when missing); prints nothing when neither can be had.
payhook_plot_python() {
  local venv="$PAYHOOK_ROOT/.run/plot-venv"
  if python3 -c "import matplotlib" 2>/dev/null; then
    echo python3
  elif [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import matplotlib" 2>/dev/null; then
    echo "$venv/bin/python"
  elif python3 -m venv "$venv" >/dev/null 2>&1 && "$venv/bin/pip" install -q matplotlib >/dev/null 2>&1; then
    echo "$venv/bin/python"
  fi
}
