#!/usr/bin/env bash
# Conformance: real clients against the mock world, on loopback only.
#
#  (a) kubectl, with the kubeconfig the mock writes: lists Services and Nodes of every cluster
#      (JSON, paged JSON, and the table output) and compares the counts with the world.
#  (b) the Python Azure SDK (azure-identity + azure-mgmt-network) in a virtualenv: a client
#      secret credential against the mock's authority host, then list_all of load balancers and
#      public IPs in every subscription, compared with the world.
#
# Usage: mocks/conformance/run.sh [--only kubectl|sdk] [--world DIR]
# Env:   CARGO_TARGET_DIR (honoured by the build), CONFORMANCE_VENV (default target/conformance-venv),
#        KEEP_TMP=1 keeps the temporary folder (ready file, kubeconfig, mock log).
#
# Nothing here may leave loopback: proxies are scrubbed, NO_PROXY covers loopback, the mock binds
# only 127.0.0.1, every endpoint comes from its ready file, and the SDK is given an explicit
# credential (never DefaultAzureCredential, which probes the instance metadata address).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
only=""
world="$root/mocks/tests/worlds/basic"
while [ $# -gt 0 ]; do
  case "$1" in
    --only) only="${2:?--only needs kubectl or sdk}"; shift 2 ;;
    --world) world=$(cd "${2:?--world needs a directory}" && pwd); shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
case "$only" in ""|kubectl|sdk) ;; *) echo "--only takes kubectl or sdk" >&2; exit 2 ;; esac

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "PASS $*"; }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }
# check NAME EXPECTED ACTUAL
check() { if [ "$2" = "$3" ]; then pass "$1 ($3)"; else fail "$1: expected $2, got $3"; fi; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/azaudit-conformance.XXXXXX")
mock_pid=""
cleanup() {
  if [ -n "$mock_pid" ] && kill -0 "$mock_pid" 2>/dev/null; then
    kill "$mock_pid" 2>/dev/null || true
    wait "$mock_pid" 2>/dev/null || true
  fi
  if [ "${KEEP_TMP:-}" = 1 ]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

# (b)'s virtualenv is prepared first, with the environment as it came: installing from PyPI is the
# one step that may use the machine's proxy settings. Everything after it talks to loopback only.
venv="${CONFORMANCE_VENV:-target/conformance-venv}"
sdk_ready=0
if [ "$only" != kubectl ]; then
  if [ -x "$venv/bin/python" ] || python3 -m venv "$venv"; then
    if "$venv/bin/python" -c 'import azure.identity, azure.mgmt.network' 2>/dev/null ||
      "$venv/bin/python" -m pip install --quiet azure-identity azure-mgmt-network; then
      sdk_ready=1
    else
      fail "sdk: pip could not install azure-identity and azure-mgmt-network into $venv"
    fi
  else
    fail "sdk: python3 -m venv $venv failed"
  fi
fi

unset HTTP_PROXY HTTPS_PROXY ALL_PROXY FTP_PROXY http_proxy https_proxy all_proxy ftp_proxy
export NO_PROXY=127.0.0.1,localhost,::1 no_proxy=127.0.0.1,localhost,::1

# Build once, and take the binary's path from cargo (so CARGO_TARGET_DIR is honoured however set).
bin=$(cargo build -q -p azaudit-mocks --bin azaudit-mock --message-format=json-render-diagnostics |
  python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "azaudit-mock":
        print(m["executable"])
')
[ -x "$bin" ] || { echo "azaudit-mock was not built" >&2; exit 1; }

ready="$tmp/ready.json"
"$bin" serve --world "$world" --listen 127.0.0.1:0 --ready-file "$ready" >"$tmp/mock.log" 2>&1 &
mock_pid=$!
for _ in $(seq 1 300); do
  [ -s "$ready" ] && break
  if ! kill -0 "$mock_pid" 2>/dev/null; then
    echo "the mock exited before it was ready:" >&2
    tail -n 20 "$tmp/mock.log" >&2
    exit 1
  fi
  sleep 0.1
done
[ -s "$ready" ] || { echo "no ready file after 30 s" >&2; tail -n 20 "$tmp/mock.log" >&2; exit 1; }

ready_get() { python3 -c 'import json,sys; v=json.load(open(sys.argv[1]))[sys.argv[2]]; print(v if isinstance(v,str) else "\n".join(v))' "$ready" "$1"; }

# Counts from the world directory itself, read the way world-format.md describes it.
world_k8s_count() { # CLUSTER KIND
  python3 - "$world" "$1" "$2" <<'PY'
import json, os, sys
world, cluster, kind = sys.argv[1:]
base = os.path.join(world, "k8s", cluster)
def expand(v, list_kind=None):
    if not isinstance(v, dict):
        return
    k = v.get("kind")
    if isinstance(v.get("items"), list):
        item_kind = k[:-4] if k and k.endswith("List") and len(k) > 4 else None
        for it in v["items"]:
            yield from expand(it, item_kind)
        return
    if k:
        yield k
    elif list_kind:
        yield list_kind
n = 0
for d, _, files in os.walk(base):
    for f in files:
        p = os.path.join(d, f)
        if not f.endswith(".json") or (d == base and f == "azure.json"):
            continue
        n += sum(1 for k in expand(json.load(open(p))) if k == kind)
print(n)
PY
}

json_items() { python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))'; }

if [ "$only" != sdk ]; then
  command -v kubectl >/dev/null || { echo "kubectl is not installed (Debian: apt-get install kubernetes-client)" >&2; exit 1; }
  kubeconfig=$(ready_get kubeconfig)
  kc=(kubectl --kubeconfig "$kubeconfig" --cache-dir "$tmp/kube-cache" --request-timeout=10s)
  check "kubeconfig is private (mode)" 600 "$(stat -c %a "$kubeconfig")"
  for cluster in $(python3 -c 'import json,sys; print(" ".join(json.load(open(sys.argv[1]))["k8s_endpoints"]))' "$ready"); do
    for kind in Service Node; do
      case $kind in Service) what=(services -A) ;; Node) what=(nodes) ;; esac
      want=$(world_k8s_count "$cluster" "$kind")
      if got=$("${kc[@]}" --context "$cluster" get "${what[@]}" -o json 2>"$tmp/err" | json_items); then
        check "kubectl $cluster get ${what[*]} -o json" "$want" "$got"
      else
        fail "kubectl $cluster get ${what[*]} -o json: $(tail -n 1 "$tmp/err")"
      fi
      if got=$("${kc[@]}" --context "$cluster" get "${what[@]}" --chunk-size=1 -o json 2>"$tmp/err" | json_items); then
        check "kubectl $cluster get ${what[*]} --chunk-size=1 (paged)" "$want" "$got"
      else
        fail "kubectl $cluster get ${what[*]} --chunk-size=1: $(tail -n 1 "$tmp/err")"
      fi
    done
    want=$(world_k8s_count "$cluster" Service)
    if table=$("${kc[@]}" --context "$cluster" get svc -A 2>"$tmp/err"); then
      header=$(printf '%s\n' "$table" | head -n 1 | tr -s ' ')
      check "kubectl $cluster get svc -A (table header)" "NAMESPACE NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE" "$header"
      check "kubectl $cluster get svc -A (table rows)" "$want" "$(printf '%s\n' "$table" | tail -n +2 | grep -c .)"
    else
      fail "kubectl $cluster get svc -A: $(tail -n 1 "$tmp/err")"
    fi
    if v=$("${kc[@]}" --context "$cluster" version -o json 2>"$tmp/err"); then
      check "kubectl $cluster version (server major.minor)" "1.31" \
        "$(printf '%s' "$v" | python3 -c 'import json,sys; s=json.load(sys.stdin)["serverVersion"]; print(s["major"]+"."+s["minor"])')"
    else
      fail "kubectl $cluster version: $(tail -n 1 "$tmp/err")"
    fi
  done
fi

if [ "$only" != kubectl ] && [ "$sdk_ready" = 1 ]; then
  # The SDK trusts the mock's CA through REQUESTS_CA_BUNDLE (requests, used by azure-core and MSAL).
  if ! REQUESTS_CA_BUNDLE=$(ready_get ca_file) "$venv/bin/python" - "$ready" "$world" >"$tmp/sdk.out" 2>"$tmp/sdk.err" <<'PY'
import json, os, re, sys

ready = json.load(open(sys.argv[1]))
world = sys.argv[2]

def world_ids():
    """Lower-cased ids of every ARM resource in the world (last file wins, as the loader does)."""
    ids = set()
    files = []
    for d, _, fs in os.walk(os.path.join(world, "arm")):
        files += [os.path.join(d, f) for f in fs if f.endswith(".json")]
    for p in sorted(files):
        v = json.load(open(p))
        items = v if isinstance(v, list) else v["value"] if isinstance(v, dict) and isinstance(v.get("value"), list) and "id" not in v else [v]
        ids.update(i["id"].lower() for i in items if isinstance(i, dict) and i.get("id"))
    return ids

def count(ids, sub, rtype):
    pat = re.compile(r"^/subscriptions/%s/resourcegroups/[^/]+/providers/%s/[^/]+$" % (re.escape(sub.lower()), re.escape(rtype.lower())))
    return sum(1 for i in ids if pat.match(i))

from azure.identity import ClientSecretCredential
from azure.mgmt.network import NetworkManagementClient

arm = ready["arm_endpoint"]
for key in ("arm_endpoint", "authority_host"):
    assert re.match(r"^https://(127\.\d+\.\d+\.\d+|\[::1\]|localhost)(:\d+)?/", ready[key]), f"{key} is not loopback: {ready[key]}"
cred = ClientSecretCredential(
    ready["tenant_id"], ready["client_id"], ready["client_secret"],
    authority=ready["authority_host"], disable_instance_discovery=True,
)
ids = world_ids()
for sub in ready["subscription_ids"]:
    client = NetworkManagementClient(cred, sub, base_url=arm, credential_scopes=[arm + ".default"])
    for label, pager, rtype in (
        ("load balancers", client.load_balancers.list_all, "Microsoft.Network/loadBalancers"),
        ("public IPs", client.public_ip_addresses.list_all, "Microsoft.Network/publicIPAddresses"),
    ):
        want = count(ids, sub, rtype)
        try:
            got = sum(1 for _ in pager())
        except Exception as e:  # one line per failure, the run goes on
            print(f"FAIL sdk {sub} list_all {label}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
            continue
        if got == want:
            print(f"PASS sdk {sub} list_all {label} ({got})")
        else:
            print(f"FAIL sdk {sub} list_all {label}: expected {want}, got {got}")
PY
  then
    fail "sdk: the Python check crashed: $(tail -n 1 "$tmp/sdk.err")"
  fi
  while IFS= read -r line; do
    case "$line" in
      PASS\ *) pass "${line#PASS }" ;;
      FAIL\ *) fail "${line#FAIL }" ;;
    esac
  done <"$tmp/sdk.out"
  if ! grep -q . "$tmp/sdk.out"; then fail "sdk: no subscription was checked"; fi
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
