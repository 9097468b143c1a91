# Shared by Tests/MultiHost/run and Benchmarks/chaos: Payhook on hosts made of network
# namespaces, joined by a bridge that lives in a namespace of its own (nothing reaches the
# machine's own network):
#   db        PostgreSQL (Deploy/pg-cluster, as its unprivileged user), listening on the bridge
#   r1 r2     `payhook serve`, the receivers
#   w1 w2 w3  `payhook work`, workers and webhook delivery; each with forward.py, a loopback
#             port to the simulated site (Payhook sends plain-http webhooks only to loopback)
#   sim       `payhook sim channels`, `payhook sim site` and the load generators (`sim load`)
# and the faults: a host cut off from the database (blackhole routes both ways, so its TCP
# connections stay open and resume on healing), SIGKILL and restart of a receiver or worker,
# and PostgreSQL stopped with `-m immediate` and started again.
# Every name comes from one per-run id (namespaces, veths, subnet, folder); mh_down removes
# it all. Sourced after Deploy/environment.sh; set MH_BIN to the payhook binary first.

MH_HOSTS="db r1 r2 w1 w2 w3 sim"
MH_ID=""
MH_DIR=""
MH_LEASE=${MH_LEASE:-10}
declare -A MH_PID=()
declare -A MH_FAULTS=()
MH_ALL_PIDS=()
MH_HOSTNAME=$(hostname)
MH_T0=${EPOCHREALTIME/./}

# What the hosts need beyond Deploy/environment.sh's packages: ip (iproute2), python3.
mh_install() {
  local missing=()
  command -v ip >/dev/null || missing+=(iproute2)
  command -v python3 >/dev/null || missing+=(python3)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "==> installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  [ "$(id -u)" -eq 0 ] || { echo "network namespaces need root" >&2; exit 1; }
}

mh_ns() { echo "$MH_ID-$1"; }
mh_in() { local host=$1; shift; ip netns exec "$MH_ID-$host" "$@"; }
mh_ip() {
  case $1 in
    db) echo "$MH_NET.2" ;; r1) echo "$MH_NET.11" ;; r2) echo "$MH_NET.12" ;;
    w1) echo "$MH_NET.21" ;; w2) echo "$MH_NET.22" ;; w3) echo "$MH_NET.23" ;; sim) echo "$MH_NET.31" ;;
  esac
}

# Seconds since the set-up began, one decimal.
mh_elapsed() {
  local us=$(( ${EPOCHREALTIME/./} - MH_T0 ))
  printf '%d.%d' $(( us / 1000000 )) $(( us / 100000 % 10 ))
}
# Prints and logs what was done, with its time; a second argument counts it as a fault kind.
mh_note() {
  printf '[%7ss] %s\n' "$(mh_elapsed)" "$1" | tee -a "$MH_DIR/actions.log"
  if [ $# -gt 1 ]; then MH_FAULTS[$2]=$(( ${MH_FAULTS[$2]:-0} + 1 )); fi
}

# Starts NAME (a log of its own, appended across restarts) on HOST; sets MH_PID[NAME].
mh_spawn() {
  local name=$1 host=$2; shift 2
  # ip itself, not the mh_in function: a function would run in a forked shell, and $! would
  # be that shell rather than the process (ip netns exec execs the command in place).
  ip netns exec "$MH_ID-$host" "$@" >>"$MH_DIR/logs/$name.log" 2>&1 &
  MH_PID[$name]=$!
  MH_ALL_PIDS+=($!)
}

# Waits for a condition (a command) up to SECONDS; fails naming WHAT.
mh_wait_for() {
  local seconds=$1 what=$2; shift 2
  local end=$(( SECONDS + seconds ))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $end ] || { echo "timed out after ${seconds}s waiting for $what" >&2; return 1; }
    sleep 0.2
  done
}

# The database from inside the db host, over loopback (partitions never cut it).
mh_sql() { mh_in db psql -XAtq -v ON_ERROR_STOP=1 "postgres://postgres@127.0.0.1:$MH_PG_PORT/payhook" "$@"; }

mh_net_up() {
  local host ns
  for _ in 1 2 3 4 5; do
    MH_ID=mh$(printf '%05x' $(( ($$ * 32768 + RANDOM) % 1048576 )))
    ip netns list | grep -q "^$MH_ID-" || break
  done
  MH_NET=10.$(( 100 + RANDOM % 100 )).$(( RANDOM % 256 ))
  MH_SUBNET=$MH_NET.0/24
  ip netns add "$MH_ID-net"
  ip -n "$MH_ID-net" link add br0 type bridge
  ip -n "$MH_ID-net" link set br0 up
  for host in $MH_HOSTS; do
    ns=$MH_ID-$host
    ip netns add "$ns"
    ip link add "$MH_ID$host" type veth peer name "$host" netns "$MH_ID-net"
    ip link set "$MH_ID$host" netns "$ns"
    ip -n "$ns" link set "$MH_ID$host" name eth0
    ip -n "$ns" addr add "$(mh_ip "$host")/24" dev eth0
    ip -n "$ns" link set lo up
    ip -n "$ns" link set eth0 up
    ip -n "$MH_ID-net" link set "$host" master br0
    ip -n "$MH_ID-net" link set "$host" up
  done
}

# PostgreSQL on the db host: a throwaway cluster that also listens on the bridge and trusts
# the run's private subnet (nothing else can reach it).
mh_pg_up() {
  MH_PG_DIR=$MH_DIR/pg
  MH_PG_PORT=$(mh_in db "$PAYHOOK_ROOT/Deploy/pg-cluster" start "$MH_PG_DIR")
  mh_in db psql -XAtq "postgres://postgres@127.0.0.1:$MH_PG_PORT/postgres" \
    -c "ALTER SYSTEM SET listen_addresses = '127.0.0.1,$(mh_ip db)'" -c "CREATE DATABASE payhook"
  echo "host all all $MH_SUBNET trust" >>"$MH_PG_DIR/data/pg_hba.conf"
  mh_in db "$PAYHOOK_ROOT/Deploy/pg-cluster" stop "$MH_PG_DIR"
  mh_in db "$PAYHOOK_ROOT/Deploy/pg-cluster" start "$MH_PG_DIR" >/dev/null
  MH_DATABASE_URL="postgres://postgres@$(mh_ip db):$MH_PG_PORT/payhook"
}
mh_pg_crash() { mh_in db "$PAYHOOK_ROOT/Deploy/pg-cluster" stop "$MH_PG_DIR" immediate; }
# Started again on its port (pg-cluster reuses it), or the hosts' URL would be wrong.
mh_pg_start() {
  local port
  port=$(mh_in db "$PAYHOOK_ROOT/Deploy/pg-cluster" start "$MH_PG_DIR")
  [ "$port" = "$MH_PG_PORT" ] || { echo "PostgreSQL came back on port $port, not $MH_PG_PORT" >&2; return 1; }
}

# The simulated site and channels on the sim host, and the configuration every host uses:
# the generated payhook.yaml with the hosts' subnet as the channels' source addresses, plain
# http to the simulator (insecure_http: its certificate names only loopback), webhooks to
# the local forwarder, no site API (its public URL would be plain http off loopback),
# WeChat Pay and points' clock-skew window widened to 30 minutes (the load generator signs
# every notify before its first send, as Benchmarks/soak explains) and a short lease.
mh_sim_up() {
  local sim=$MH_DIR/sim
  mkdir -p "$sim"
  mh_spawn sim-site sim "$MH_BIN" sim site --dir "$sim" --host "$(mh_ip sim)" --port 8095 --fail-rate "${MH_SITE_FAIL_RATE:-0.05}"
  mh_wait_for 120 "payhook sim site" test -f "$sim/site.json"
  mh_spawn sim-channels sim "$MH_BIN" sim channels --dir "$sim" --host "$(mh_ip sim)" --port 8090 \
    --listen "$(mh_ip r1):8080" --api-listen none --database-url "$MH_DATABASE_URL"
  mh_wait_for 120 "payhook sim channels" test -f "$sim/payhook.yaml"
  MH_CONFIG=$sim/payhook.yaml
  python3 - "$MH_CONFIG" "$MH_SUBNET" "$MH_LEASE" <<'PY'
import re, sys
path, subnet, lease = sys.argv[1:4]
out, skipping = [], False
for line in open(path).read().splitlines():
    if skipping and line.startswith("  "):
        continue
    skipping = line == "site:"
    if skipping or line.strip().startswith("insecure_http:"):
        continue
    if line.strip().startswith("allowed_ips:"):
        out += ["    allowed_ips: [%s]" % subnet, "    insecure_http: true"]
        continue
    line = line.replace("max_clock_skew_seconds: 300", "max_clock_skew_seconds: 1800")
    line = re.sub(r"^  lease_seconds: \d+$", "  lease_seconds: " + lease, line)
    line = re.sub(r'^    url: "http://[0-9.]+:8095/', '    url: "http://127.0.0.1:8095/', line)
    out.append(line)
open(path, "w").write("\n".join(out) + "\n")
PY
  mh_in w1 "$MH_BIN" migrate --config "$MH_CONFIG" >>"$MH_DIR/logs/migrate.log" 2>&1
}

mh_receiver_ready() { mh_in "r$1" curl -sf "http://$(mh_ip "r$1"):8080/readyz"; }
mh_start_receiver() {
  mh_spawn "r$1" "r$1" env PAYHOOK_RECEIVER_LISTEN="$(mh_ip "r$1"):8080" "$MH_BIN" serve --config "$MH_CONFIG"
  mh_wait_for 120 "receiver r$1" mh_receiver_ready "$1"
}

mh_worker_up() { mh_in "w$1" curl -sf -o /dev/null "http://$(mh_ip "w$1"):9090/metrics"; }
mh_start_worker() {
  if [ -z "${MH_PID[w$1-forward]:-}" ]; then
    mh_spawn "w$1-forward" "w$1" python3 "$PAYHOOK_ROOT/Tests/MultiHost/forward.py" 127.0.0.1 8095 "$(mh_ip sim)" 8095
  fi
  mh_spawn "w$1" "w$1" env PAYHOOK_WORKER_METRICS_LISTEN="$(mh_ip "w$1"):9090" "$MH_BIN" work --config "$MH_CONFIG"
  # Every process of a host, for telling its callback_attempts rows from the others'.
  echo "w$1 $MH_HOSTNAME:${MH_PID[w$1]}/" >>"$MH_DIR/workers"
  mh_wait_for 120 "worker w$1" mh_worker_up "$1"
}

# SIGKILL, then reap (our own child).
mh_kill() {
  kill -KILL "${MH_PID[$1]}" 2>/dev/null || true
  wait "${MH_PID[$1]}" 2>/dev/null || true
}

# SIGKILLs worker host N mid-batch: waits (up to 30 s) until it holds leases, kills it, and
# counts the leases its dead process still holds (MH_KILL_HELD; 0: it died between batches).
mh_kill_worker_mid_batch() {
  local n=$1 dead=$MH_HOSTNAME:${MH_PID[w$1]}/ end=$(( SECONDS + 30 ))
  until [ "$(mh_worker_leases "$n")" -gt 0 ] || [ $SECONDS -ge $end ]; do sleep 0.05; done
  mh_kill "w$n"
  MH_KILL_HELD=$(mh_sql -v prefix="$dead" <<<"SELECT count(*) FROM callback_jobs WHERE state = 'processing' AND starts_with(locked_by, :'prefix')")
}

# Leases the running process of worker host N holds now (rows it is processing).
mh_worker_leases() {
  mh_sql -v prefix="$MH_HOSTNAME:${MH_PID[w$1]}/" <<<"SELECT count(*) FROM callback_jobs WHERE state = 'processing' AND starts_with(locked_by, :'prefix')"
}

mh_partition() {
  ip -n "$MH_ID-$1" route add blackhole "$(mh_ip db)/32"
  ip -n "$MH_ID-db" route add blackhole "$(mh_ip "$1")/32"
}
mh_heal() {
  ip -n "$MH_ID-$1" route del blackhole "$(mh_ip db)/32" 2>/dev/null || true
  ip -n "$MH_ID-db" route del blackhole "$(mh_ip "$1")/32" 2>/dev/null || true
}

# Sets everything up in a new folder under .run/ (or /tmp); mh_down removes it on exit.
mh_up() {
  mkdir -p "$PAYHOOK_ROOT/.run"
  MH_DIR=$(mktemp -d "$PAYHOOK_ROOT/.run/multihost.XXXXXX")
  # PostgreSQL's account must reach its folder.
  if ! chmod 711 "$MH_DIR" || ! runuser -u postgres -- test -x "$MH_DIR" 2>/dev/null; then
    rm -rf "$MH_DIR"; MH_DIR=$(mktemp -d /tmp/payhook-multihost.XXXXXX); chmod 711 "$MH_DIR"
  fi
  mkdir -p "$MH_DIR/logs"
  : >"$MH_DIR/workers"
  trap 'mh_down' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  mh_net_up
  mh_note "hosts $MH_HOSTS as namespaces $MH_ID-*, subnet $MH_SUBNET, files in $MH_DIR"
  mh_pg_up
  mh_note "PostgreSQL on db ($MH_DATABASE_URL)"
  mh_sim_up
  mh_note "simulated channels and site on sim; migrated; lease ${MH_LEASE}s"
  local i
  for i in 1 2; do mh_start_receiver $i; done
  mh_note "receivers on r1 r2 (pids ${MH_PID[r1]} ${MH_PID[r2]})"
  for i in 1 2 3; do mh_start_worker $i; done
  mh_note "workers on w1 w2 w3 (pids ${MH_PID[w1]} ${MH_PID[w2]} ${MH_PID[w3]})"
}

mh_down() {
  local status=$? pid host end
  set +e
  for pid in "${MH_ALL_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  end=$(( SECONDS + 15 ))
  for pid in "${MH_ALL_PIDS[@]}"; do
    while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $end ]; do sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  if [ -n "${MH_PG_DIR:-}" ] && [ -n "$MH_ID" ]; then
    mh_in db "$PAYHOOK_ROOT/Deploy/pg-cluster" remove "$MH_PG_DIR" 2>/dev/null
  fi
  if [ -n "$MH_ID" ]; then
    for host in $MH_HOSTS net; do ip netns del "$MH_ID-$host" 2>/dev/null; done
  fi
  if [ "$status" -ne 0 ] && [ -n "$MH_DIR" ] && [ -d "$MH_DIR/logs" ]; then
    payhook_show_logs "$MH_DIR/logs"
  fi
  if [ -n "$MH_DIR" ] && [ "${MH_KEEP:-0}" = 1 ]; then
    echo "kept $MH_DIR (MH_KEEP=1)"
  elif [ -n "$MH_DIR" ]; then
    rm -rf "$MH_DIR"
  fi
  exit "$status"
}

# Starts `payhook sim load` NAME on the sim host against receiver rN; extra options follow.
mh_start_load() {
  local name=$1 receiver=$2; shift 2
  mh_spawn "$name" sim "$MH_BIN" sim load --dir "$MH_DIR/sim" --url "http://$(mh_ip "$receiver"):8080" \
    --database-url "$MH_DATABASE_URL" --sends-file "$MH_DIR/$name.sends.csv" "$@"
}
# Whether load NAME has made its orders and begun sending.
mh_load_sending() { grep -q "orders created" "$MH_DIR/logs/$1.log"; }
# Waits for load NAME; its exit status (non-zero: its check found a mismatch).
mh_wait_load() { local status=0; wait "${MH_PID[$1]}" || status=$?; return $status; }

# Cuts worker host N off from the database while it holds leases (so there are late
# finishes for the fence to refuse), retrying for a moment when it holds none; remembers
# those leases (table mh_cut_leases) for mh_taken_over. Sets MH_CUT_HELD.
mh_cut_worker() {
  local n=$1 tries=0
  MH_CUT_HELD=0
  mh_sql -c "SET client_min_messages = warning" -c "CREATE TABLE IF NOT EXISTS mh_cut_leases (host text, callback_id bigint, attempts int)"
  mh_sql -v host="w$n" <<<"DELETE FROM mh_cut_leases WHERE host = :'host'"
  while true; do
    mh_partition "w$n"
    MH_CUT_HELD=$(mh_sql -v host="w$n" -v prefix="$MH_HOSTNAME:${MH_PID[w$n]}/" <<<"
      WITH held AS (INSERT INTO mh_cut_leases
                    SELECT :'host', callback_id, attempts FROM callback_jobs
                    WHERE state = 'processing' AND starts_with(locked_by, :'prefix') RETURNING 1)
      SELECT count(*) FROM held")
    [ "$MH_CUT_HELD" -gt 0 ] && break
    mh_heal "w$n"
    tries=$(( tries + 1 ))
    [ $tries -lt 100 ] || { mh_note "w$n held no leases in 100 tries; not cut"; return 0; }
    sleep 0.1
  done
  mh_note "cut w$n (pid ${MH_PID[w$n]}) off from the database holding $MH_CUT_HELD leases (lease ${MH_LEASE}s)" partition
}

# How many of the leases worker host N held when cut another worker has since claimed.
mh_taken_over() {
  mh_sql -v host="w$1" <<<"SELECT count(*) FROM mh_cut_leases c JOIN callback_jobs j USING (callback_id)
                             WHERE c.host = :'host' AND j.attempts > c.attempts"
}

# Whether the running process of worker host N has finished a callback (not lease_lost)
# since the time T (epoch seconds): it has rejoined.
mh_rejoined() {
  [ "$(mh_sql -v prefix="$MH_HOSTNAME:${MH_PID[w$1]}/" -v t="$2" <<<"SELECT count(*) FROM callback_attempts
       WHERE starts_with(worker, :'prefix') AND outcome <> 'lease_lost' AND finished_at > to_timestamp(:t)")" -gt 0 ]
}

# The audit beyond each load's own check (every acknowledged callback stored and finished
# as its kind requires, valid orders paid once, the rest not): across the whole database,
# no order transitioned twice, the queue empty, no dead callback, every webhook delivery
# delivered and the site's distinct event ids exactly the events Payhook committed; and the
# fence's refusals (callback_attempts rows `lease_lost`) by worker host. Prints a table;
# returns 1 on a violation. Sets MH_REFUSED[host].
declare -A MH_REFUSED=()
mh_audit() {
  local violations=0 twice paid_twice unfinished dead undelivered host prefix count site_check
  twice=$(mh_sql -c "SELECT count(*) FROM (SELECT out_trade_no FROM order_events WHERE kind = 'transition' GROUP BY out_trade_no HAVING count(*) > 1) t")
  paid_twice=$(mh_sql -c "SELECT count(*) FROM (SELECT out_trade_no FROM order_outbox WHERE kind = 'order.paid' GROUP BY out_trade_no HAVING count(*) > 1) t")
  unfinished=$(mh_sql -c "SELECT count(*) FROM callback_jobs WHERE state IN ('pending', 'processing')")
  dead=$(mh_sql -c "SELECT count(*) FROM callback_jobs WHERE state = 'dead'")
  undelivered=$(mh_sql -c "SELECT count(*) FROM webhook_deliveries WHERE state <> 'delivered'")
  mh_sql -c "SELECT event_id FROM order_outbox ORDER BY 1" >"$MH_DIR/committed-events"
  mh_in sim curl -sf "http://$(mh_ip sim):8095/site/events" >"$MH_DIR/site-events.json"
  site_check=$(python3 - "$MH_DIR/committed-events" "$MH_DIR/site-events.json" <<'PY'
import json, sys
committed = set(open(sys.argv[1]).read().split())
events = json.load(open(sys.argv[2]))["events"]
got = [e["id"] for e in events]
repeats = sum(e["deliveries"] - 1 for e in events)
print(len(committed - set(got)), len(set(got) - committed), len(got) - len(set(got)), len(got), repeats)
PY
)
  read -r missing_events extra_events doubled_events site_events repeats <<<"$site_check"
  printf '  %-58s %s\n' "orders with more than one transition" "$twice" \
    "orders with more than one order.paid event" "$paid_twice" \
    "callbacks still pending or processing" "$unfinished" \
    "dead callbacks" "$dead" \
    "webhook deliveries not delivered" "$undelivered" \
    "committed events the site never got" "$missing_events" \
    "events the site got that were never committed" "$extra_events" \
    "event ids the site recorded twice" "$doubled_events"
  echo "  site: $site_events distinct events, $repeats redeliveries deduplicated by id"
  for count in "$twice" "$paid_twice" "$unfinished" "$dead" "$undelivered" "$missing_events" "$extra_events" "$doubled_events"; do
    [ "$count" = 0 ] || violations=$(( violations + 1 ))
  done
  echo "  fence refusals (callback_attempts lease_lost) by worker host:"
  for host in w1 w2 w3; do
    count=0
    while read -r name prefix; do
      [ "$name" = "$host" ] || continue
      count=$(( count + $(mh_sql -v prefix="$prefix" <<<"SELECT count(*) FROM callback_attempts WHERE outcome = 'lease_lost' AND starts_with(worker, :'prefix')") ))
    done <"$MH_DIR/workers"
    MH_REFUSED[$host]=$count
    printf '    %s %s\n' "$host" "$count"
  done
  [ "$violations" -eq 0 ]
}

# Whether the running process of worker host N has had a late finish refused (in the table).
mh_refused_any() {
  [ "$(mh_sql -v prefix="$MH_HOSTNAME:${MH_PID[w$1]}/" <<<"SELECT count(*) FROM callback_attempts
       WHERE outcome = 'lease_lost' AND starts_with(worker, :'prefix')")" -gt 0 ]
}

# The fence refusals the running process of worker host N counted in its metrics.
mh_metric_refusals() {
  mh_in "w$1" curl -sf "http://$(mh_ip "w$1"):9090/metrics" \
    | awk '/^payhook_worker_callbacks_total\{/ && /outcome="lease_lost"/ { sum += $NF } END { print sum + 0 }'
}
