#!/usr/bin/env bash
# The inventory benchmark (issue 4; results and how to read them: BENCHMARKS.md).
#
# Generates worlds with `azaudit-mock generate` (kept under target/bench/ and reused), serves
# them on 127.0.0.1 only, runs `azaudit inventory` under /usr/bin/time -v against the mock and
# prints one line per scenario: wall time, ARM requests against the mock's minimal page count,
# 429s, retries, peak RSS and each target with PASS/MISS. Numbers are reported, never asserted
# by tests (timings depend on the machine).
#
# Usage: bench/inventory.sh [--scenarios 1,2,3,4] [--keep]
#   --scenarios  which scenarios to run (default: all four)
#   --keep       keep the inventory JSON outputs (large for scenario 4) under target/bench/runs/
# Environment:
#   CARGO_TARGET_DIR     where the release binaries are (default: ./target); built if missing
#   AZAUDIT_BENCH_DIR    where worlds and results go (default: ./target/bench)
#   AZAUDIT_BENCH_ARGS   extra flags for every `azaudit inventory` run (e.g. "--max-rps 20")
#
# Scenarios (issue 4):
#   1. 3 subscriptions, 6 clusters, 2,400 Services, 900 nodes, 30 ms latency, Azure's default
#      throttle (250-read bucket, 25/s): requests <= 1.02 x minimum, zero 429s,
#      wall <= 1.5 x the mock's lower bound (longest page chain x latency).
#   2. Same world, 20-token bucket refilling 5/s: zero or near-zero 429s, wall <= 1.2 x the
#      mock's throttle bound ((pages - bucket) / refill for the busiest subscription).
#   3. Scenario 1 again with the cache it filled: zero ARM requests.
#   4. 100,000 extra resources (NICs, VMs, public IPs): peak RSS, aim under 500 MB.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$TARGET/release"
WORK="${AZAUDIT_BENCH_DIR:-$ROOT/target/bench}"
SCENARIOS="1,2,3,4"
KEEP=0
EXTRA_ARGS=()
if [[ -n "${AZAUDIT_BENCH_ARGS:-}" ]]; then
  read -r -a EXTRA_ARGS <<<"$AZAUDIT_BENCH_ARGS"
fi

while [[ $# -gt 0 ]]; do
  case "$1" in
    --scenarios) SCENARIOS="$2"; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
    *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

die() { echo "bench: $*" >&2; exit 1; }
wants() { [[ ",$SCENARIOS," == *",$1,"* ]]; }

for tool in jq curl; do
  command -v "$tool" >/dev/null || die "$tool is missing: apt-get install $tool"
done
[[ -x /usr/bin/time ]] || die "/usr/bin/time is missing: apt-get install time"

if [[ ! -x "$BIN/azaudit" || ! -x "$BIN/azaudit-mock" ]]; then
  echo "bench: building release binaries into $TARGET" >&2
  (cd "$ROOT" && CARGO_TARGET_DIR="$TARGET" cargo build --release -p azaudit -p azaudit-mocks)
fi

mkdir -p "$WORK/runs"
RESULTS="$WORK/results.txt"
: >"$RESULTS"

MOCK_PID=""
stop_mock() {
  if [[ -n "$MOCK_PID" ]]; then
    kill -TERM "$MOCK_PID" 2>/dev/null || true
    wait "$MOCK_PID" 2>/dev/null || true
    MOCK_PID=""
  fi
}
trap stop_mock EXIT
trap 'stop_mock; exit 130' INT TERM

# gen_world DIR FLAGS...: generates a world unless DIR already holds one.
gen_world() {
  local dir="$1"; shift
  if [[ -f "$dir/world.json" ]]; then
    echo "bench: reusing $dir" >&2
    return
  fi
  echo "bench: generating $dir" >&2
  "$BIN/azaudit-mock" generate --out "$dir" --seed 1 "$@" >/dev/null 2>"$WORK/generate.log" \
    || die "generate failed, see $WORK/generate.log"
}

# start_mock WORLD FLAGS...: serves WORLD on 127.0.0.1 and loads the ready file's fields.
start_mock() {
  local world="$1"; shift
  local run="$WORK/mock"
  rm -rf "$run"; mkdir -p "$run"
  "$BIN/azaudit-mock" serve --world "$world" --listen 127.0.0.1:0 \
    --ready-file "$run/ready.json" --files-dir "$run/files" "$@" >"$run/mock.log" 2>&1 &
  MOCK_PID=$!
  local i
  for i in $(seq 1 600); do
    [[ -s "$run/ready.json" ]] && break
    kill -0 "$MOCK_PID" 2>/dev/null || die "the mock exited, see $run/mock.log"
    sleep 0.2
  done
  [[ -s "$run/ready.json" ]] || die "the mock was not ready after 120 s, see $run/mock.log"
  READY="$run/ready.json"
  ARM=$(jq -r .arm_endpoint "$READY")
  ADMIN=$(jq -r .admin_endpoint "$READY")
  CA=$(jq -r .ca_file "$READY")
  case "$ARM" in https://127.*|https://localhost*) ;; *) die "the mock is not on loopback: $ARM" ;; esac
}

admin() { # admin METHOD PATH
  curl -sS --fail --noproxy '*' --cacert "$CA" -X "$1" "$ADMIN/$2"
}

# run_inventory NAME FLAGS...: one timed `azaudit inventory` run against the mock; the mock's
# counters are reset first. Leaves $WORK/runs/NAME.{json,time,err,mock-stats.json}.
run_inventory() {
  local name="$1"; shift
  local out="$WORK/runs/$name"
  admin POST reset >/dev/null
  local rc=0
  # The secret goes through the environment: /usr/bin/time records the command line.
  AZURE_CLIENT_SECRET="$(jq -r .client_secret "$READY")" /usr/bin/time -v -o "$out.time" \
    "$BIN/azaudit" --log-format json -v inventory --format json --loopback-only \
    --auth service-principal \
    --tenant-id "$(jq -r .tenant_id "$READY")" \
    --client-id "$(jq -r .client_id "$READY")" \
    --arm-endpoint "$ARM" \
    --authority-host "$(jq -r .authority_host "$READY")" \
    --ca-file "$CA" \
    --kubeconfig "$(jq -r .kubeconfig "$READY")" --all-contexts \
    "${EXTRA_ARGS[@]}" "$@" >"$out.json" 2>"$out.err" || rc=$?
  admin GET stats >"$out.mock-stats.json"
  # 0: complete; 2: incomplete (gaps are counted below). Anything else is a failed run.
  if [[ $rc -ne 0 && $rc -ne 2 ]]; then
    tail -5 "$out.err" >&2
    die "azaudit inventory exited $rc in scenario $name (see $out.err)"
  fi
  # Phase timings azaudit logs at info level (-v): Kubernetes listing, then ARM collection.
  local k8s_ms arm_ms
  k8s_ms=$(jq -r 'select(.fields.message? == "Kubernetes listing done") | .fields.elapsed_ms' "$out.err" | tail -1)
  arm_ms=$(jq -r 'select(.fields.message? == "ARM collection done") | .fields.elapsed_ms' "$out.err" | tail -1)
  jq --argjson k "${k8s_ms:-null}" --argjson a "${arm_ms:-null}" \
    '{stats: .stats, gaps: (.inventory.gaps | length), kubernetes_ms: $k, arm_ms: $a}' \
    "$out.json" >"$out.azaudit-stats.json"
  [[ $KEEP -eq 1 ]] || rm -f "$out.json"
}

# Wall time (seconds) and peak RSS (MB) from /usr/bin/time -v.
wall_s() {
  awk -F': ' '/Elapsed \(wall clock\)/ {
    n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; printf "%.2f", s }' "$1"
}
rss_mb() { awk -F': ' '/Maximum resident set size/ { printf "%.0f", $2 / 1024 }' "$1"; }

verdict() { if awk "BEGIN { exit !($1) }"; then echo PASS; else echo MISS; fi; }

# report NAME TITLE: prints and records the scenario line; sets the variables the targets use.
report() {
  local name="$1" title="$2" out="$WORK/runs/$1"
  local ms="$out.mock-stats.json" as="$out.azaudit-stats.json"
  WALL=$(wall_s "$out.time"); RSS=$(rss_mb "$out.time")
  REQ=$(jq .arm_requests "$ms"); MIN=$(jq .minimal_pages "$ms")
  T429=$(jq .throttled_429 "$ms"); RETRIES=$(jq .stats.retries "$as")
  HITS=$(jq .stats.cache_hits "$as"); GAPS=$(jq .gaps "$as")
  LB_S=$(jq '.lower_bound_ms / 1000' "$ms"); TB_S=$(jq '.throttle_bound_seconds // 0' "$ms")
  K8S_S=$(jq '(.kubernetes_ms // 0) / 1000' "$as"); ARM_S=$(jq '(.arm_ms // 0) / 1000' "$as")
  RATIO=$(awk "BEGIN { printf \"%.3f\", $REQ / ($MIN > 0 ? $MIN : 1) }")
  printf '%s %-26s wall %6.2fs (Kubernetes %.2fs, ARM %.2fs)  requests %5s / minimal %5s (x%s)  429s %s  retries %s  cache hits %s  gaps %s  peak RSS %s MB\n' \
    "$name" "$title" "$WALL" "$K8S_S" "$ARM_S" "$REQ" "$MIN" "$RATIO" "$T429" "$RETRIES" "$HITS" "$GAPS" "$RSS" | tee -a "$RESULTS"
}

# chain_floor SUBSCRIPTION TYPE: seconds one keep-alive connection takes to walk every page of
# that list, one after the other, with nothing else running: what this mock on this machine
# allows for the longest chain (its per-page work included), against the lower bound, which
# counts latency alone. Needs python3; prints nothing without it.
chain_floor() {
  command -v python3 >/dev/null || return 0
  python3 - "$READY" "$1" "$2" <<'PY'
import http.client, json, ssl, sys, time, urllib.parse, urllib.request
ready, sub, typ = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=ready["ca_file"])
form = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": ready["client_id"],
    "client_secret": ready["client_secret"], "scope": ready["arm_endpoint"] + ".default"}).encode()
url = ready["authority_host"].rstrip("/") + "/" + ready["tenant_id"] + "/oauth2/v2.0/token"
token = json.load(urllib.request.urlopen(url, form, context=ctx))["access_token"]
arm = urllib.parse.urlparse(ready["arm_endpoint"])
conn = http.client.HTTPSConnection(arm.hostname, arm.port, context=ctx)
api = "2025-04-01" if typ.startswith("Microsoft.Compute") else "2025-05-01"
path, t0 = f"/subscriptions/{sub}/providers/{typ}?api-version={api}", time.monotonic()
while path:
    conn.request("GET", path, headers={"Authorization": "Bearer " + token})
    link = json.loads(conn.getresponse().read()).get("nextLink")
    path = None if not link else urllib.parse.urlparse(link)._replace(scheme="", netloc="").geturl()
print(f"{time.monotonic() - t0:.2f}")
PY
}

target() { # target TEXT VERDICT
  printf '     target: %-52s %s\n' "$1" "$2" | tee -a "$RESULTS"
}

WORLD="$WORK/world-2400"
LARGE="$WORK/world-100k"
SIZE_FLAGS=(--subscriptions 3 --clusters 6 --services 2400 --nodes 900)

echo "bench: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%dT%H:%MZ), $("$BIN/azaudit" --version)" | tee -a "$RESULTS"

if wants 1 || wants 2 || wants 3; then
  gen_world "$WORLD" "${SIZE_FLAGS[@]}"
fi

if wants 1 || wants 3; then
  start_mock "$WORLD" --latency-ms 30 --reads-bucket 250 --reads-per-second 25
  CACHE="$WORK/cache"
  rm -rf "$CACHE"
  # Scenario 1 starts with an empty cache and fills it; scenario 3 reruns on that cache (same
  # mock instance: cache keys name the endpoint, whose port changes on every start).
  run_inventory s1 --cache-dir "$CACHE"
  if wants 1; then
    report s1 "default throttle, 30 ms"
    target "requests <= 1.02 x minimal ($RATIO)" "$(verdict "$RATIO <= 1.02")"
    target "zero 429s ($T429)" "$(verdict "$T429 == 0")"
    target "wall <= 1.5 x lower bound $LB_S s ($(awk "BEGIN{printf \"%.2f\", $WALL/$LB_S}")x)" \
      "$(verdict "$WALL <= 1.5 * $LB_S")"
    # Not a target of the issue: the ARM phase alone against the same bound, and the longest
    # list walked alone (after the run; the mock's counters are reset before every run).
    printf '     (info: ARM phase %.2fs = %.2fx the lower bound' "$ARM_S" "$(awk "BEGIN{print $ARM_S/$LB_S}")" | tee -a "$RESULTS"
    longest=$(jq -r '[.minimal_pages_detail | to_entries[] | .key as $s | .value | to_entries[]
      | select(.key | startswith("list ")) | {s: $s, t: (.key | ltrimstr("list ")), n: .value}]
      | max_by(.n) | "\(.s) \(.t) \(.n)"' "$WORK/runs/s1.mock-stats.json")
    read -r lsub ltype lpages <<<"$longest"
    floor=$(chain_floor "$lsub" "$ltype")
    if [[ -n "$floor" ]]; then
      printf '; %s pages of %s walked alone: %ss)\n' "$lpages" "${ltype#*/}" "$floor" | tee -a "$RESULTS"
    else
      printf ')\n' | tee -a "$RESULTS"
    fi
  fi
  if wants 3; then
    run_inventory s3 --cache-dir "$CACHE"
    report s3 "warm cache rerun"
    target "zero ARM requests ($REQ)" "$(verdict "$REQ == 0")"
  fi
  stop_mock
fi

if wants 2; then
  start_mock "$WORLD" --latency-ms 30 --reads-bucket 20 --reads-per-second 5
  run_inventory s2 --no-cache
  report s2 "bucket 20, refill 5/s"
  # "Near-zero": at most 1% of the minimal page count.
  target "zero or near-zero 429s ($T429; near-zero <= 1% of $MIN)" "$(verdict "$T429 <= 0.01 * $MIN")"
  target "wall <= 1.2 x throttle bound $TB_S s ($(awk "BEGIN{printf \"%.2f\", $WALL/($TB_S>0?$TB_S:1)}")x)" \
    "$(verdict "$WALL <= 1.2 * $TB_S")"
  printf '     (info: ARM phase %.2fs = %.2fx the throttle bound; lowest remaining reads %s)\n' "$ARM_S" \
    "$(awk "BEGIN{print $ARM_S/($TB_S>0?$TB_S:1)}")" \
    "$(jq -c '[.lowest_remaining_reads[]] | min' "$WORK/runs/s2.mock-stats.json")" | tee -a "$RESULTS"
  stop_mock
fi

if wants 4; then
  gen_world "$LARGE" "${SIZE_FLAGS[@]}" --extra-resources 100000
  start_mock "$LARGE" --latency-ms 30 --reads-bucket 250 --reads-per-second 25
  run_inventory s4 --no-cache
  report s4 "100k extra resources"
  target "peak RSS < 500 MB ($RSS MB)" "$(verdict "$RSS < 500")"
  stop_mock
fi

echo "bench: results in $RESULTS, per-run details in $WORK/runs/" >&2
