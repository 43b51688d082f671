#!/usr/bin/env bash
# Renders the demo world's HTML report in headless Chromium, takes a screenshot and checks that
# the page ran its script without errors, logged nothing to the console, and fits the window.
#
#   scripts/html-screenshot.sh [OUT_DIR]        (default: target/html-screenshot)
#   AZAUDIT_HTML=report.html scripts/html-screenshot.sh   checks a given report instead
#
# The report is a file:// page whose Content-Security-Policy forbids every fetch, and Chromium is
# started with background networking, updates, sync and DNS (every host maps to NOTFOUND) off, so
# nothing leaves the machine. The report comes from two runs with a state file (12 days apart, one
# orphan gone in between) so that orphan ages, "new" and "resolved" are on the page.
#
# Chromium: `chromium` (Debian) is installed with apt-get when missing and running as root; if it
# cannot be had, the check is skipped with a message and exit 0, unless AZAUDIT_REQUIRE_CHROMIUM=1.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-target/html-screenshot}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

skip() {
  echo "html-screenshot: SKIP: $*" >&2
  if [ "${AZAUDIT_REQUIRE_CHROMIUM:-0}" = 1 ]; then exit 1; fi
  exit 0
}

find_chromium() {
  for c in chromium chromium-browser google-chrome; do
    if command -v "$c" >/dev/null 2>&1; then command -v "$c"; return 0; fi
  done
  return 1
}

browser="$(find_chromium || true)"
if [ -z "$browser" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "html-screenshot: installing chromium (apt-get)" >&2
  export DEBIAN_FRONTEND=noninteractive
  { apt-get update -qq && apt-get install -y -qq chromium; } >"$out/apt.log" 2>&1 || true
  browser="$(find_chromium || true)"
fi
[ -n "$browser" ] || skip "no chromium and it could not be installed (see $out/apt.log)"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
if [ -n "${AZAUDIT_HTML:-}" ]; then
  # Check a given report instead (used to test this checker with a broken page).
  cp "$AZAUDIT_HTML" "$out/azaudit-demo.html"
else
bin="${AZAUDIT_BIN:-}"
if [ -z "$bin" ]; then
  cargo build -q --bin azaudit
  bin="${CARGO_TARGET_DIR:-target}/debug/azaudit"
fi

# Night 1: the demo world plus one more orphaned public IP, which is gone by night 2.
cp -r mocks/worlds/demo "$work/night1"
cat >"$work/night1/arm/extra-orphan.json" <<'JSON'
{"id": "/subscriptions/6d3f9a52-1c8e-4b7a-9f0d-2e5c8b4a1f37/resourceGroups/MC_rg-aks-prod_aks-prod_westeurope/providers/Microsoft.Network/publicIPAddresses/kubernetes-a0e0c1f2d3b4a5968778695a4b3c2d1e",
 "name": "kubernetes-a0e0c1f2d3b4a5968778695a4b3c2d1e", "type": "Microsoft.Network/publicIPAddresses", "location": "westeurope",
 "tags": {"k8s-azure-cluster-name": "kubernetes", "k8s-azure-service": "shop/checkout-old"},
 "sku": {"name": "Standard"},
 "properties": {"ipAddress": "51.105.231.40", "publicIPAllocationMethod": "Static", "publicIPAddressVersion": "IPv4"}}
JSON
state="$work/state.json"
set +e
"$bin" --quiet audit --snapshot "$work/night1" --skip orphaned-nsg-rule --state "$state" \
  --now 2026-11-15T03:00:00Z --format json --output "$work/night1.json"
rc1=$?
"$bin" --quiet audit --snapshot mocks/worlds/demo --state "$state" --min-age 7d \
  --now 2026-11-27T03:00:00Z --format html --output "$out/azaudit-demo.html"
rc2=$?
set -e
if [ "$rc1" -gt 2 ] || [ "$rc2" -gt 2 ]; then
  echo "html-screenshot: FAIL: azaudit exited $rc1 / $rc2" >&2
  exit 1
fi
grep -q 'Resolved since the last run (1)' "$out/azaudit-demo.html" \
  || { echo "html-screenshot: FAIL: the report does not list the resolved orphan" >&2; exit 1; }
fi

flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --no-default-browser-check
  --disable-background-networking --disable-component-update --disable-sync --disable-extensions
  --disable-default-apps --disable-dev-shm-usage --host-resolver-rules="MAP * ~NOTFOUND" --hide-scrollbars
  --window-size=1400,1000 --enable-logging=stderr --v=0)
url="file://$out/azaudit-demo.html"
profile="$work/profile"
"$browser" "${flags[@]}" --user-data-dir="$profile" --virtual-time-budget=3000 --dump-dom "$url" \
  >"$out/dom.html" 2>"$out/chromium-dom.log" || true
"$browser" "${flags[@]}" --user-data-dir="$profile" --virtual-time-budget=3000 \
  --screenshot="$out/azaudit-demo.png" "$url" >/dev/null 2>"$out/chromium-shot.log" || true
# The filter and sort code, driven through a link: medium findings only, sorted by resource.
"$browser" "${flags[@]}" --user-data-dir="$profile" --virtual-time-budget=3000 --dump-dom \
  "$url#sev=medium&sort=resource" >"$out/dom-view.html" 2>"$out/chromium-view.log" || true

# A browser that cannot start here (no shared memory, missing libraries) says nothing about the
# page: skip rather than fail. Anything it did render is checked strictly.
grep -q '<html' "$out/dom.html" 2>/dev/null \
  || skip "chromium rendered nothing (see $out/chromium-dom.log)"

# The flags the page script sets live on the root element; read them from its start tag only.
root_tag="$(grep -o -m1 '<html[^>]*>' "$out/dom.html" || true)"
fail=0
check() { if ! eval "$2"; then echo "html-screenshot: FAIL: $1" >&2; fail=1; fi; }
check "the page script did not finish (root element: $root_tag; see $out/chromium-dom.log)" \
  "[[ \"\$root_tag\" == *'data-azaudit-ready=\"1\"'* ]]"
check "the page script reported an error (root element: $root_tag)" \
  "[[ \"\$root_tag\" != *data-azaudit-error=* ]]"
check "the page is wider than the 1400 px window" "[[ \"\$root_tag\" == *'data-azaudit-fits=\"1\"'* ]]"
check "console messages (errors, CSP violations): $(grep -h 'CONSOLE' "$out"/chromium-*.log | head -5 || true)" \
  "! grep -q 'CONSOLE' '$out'/chromium-*.log"
if [ -z "${AZAUDIT_HTML:-}" ]; then
  # The medium findings only, in resource order: the resource is the second word of each row's
  # data-text ("<rule> <resource> <message>", lowercased), so the visible rows' resources must be
  # sorted, and the report's own order (severity, rule, resource) must not already be that order.
  expected="$(grep -o '<tr data-i="[^>]*data-sev="medium"' "$out/azaudit-demo.html" | wc -l)"
  visible="$(grep -o '<tr data-i="[^>]*>' "$out/dom-view.html" | grep -v -c ' hidden=""' || true)"
  resources() { grep -o '<tr data-i="[^>]*>' "$1" | grep -v ' hidden=""' | grep "$2" | sed -n 's/.*data-text="[^ ]* \([^ ]*\).*/\1/p'; }
  shown="$(resources "$out/dom-view.html" .)"
  report_order="$(resources "$out/azaudit-demo.html" 'data-sev="medium"')"
  check "#sev=medium shows $visible rows, expected $expected" "[ '$visible' = '$expected' ] && [ '$expected' -gt 1 ]"
  check "#sort=resource did not sort the rows by resource: $(echo $shown)" \
    "printf '%s\\n' \"\$shown\" | LC_ALL=C sort -c 2>/dev/null && [ \"\$shown\" != \"\$report_order\" ]"
fi
check "no screenshot was written (see $out/chromium-shot.log)" "[ -s '$out/azaudit-demo.png' ]"
if [ -s "$out/azaudit-demo.png" ]; then
  # PNG IHDR: width and height are the big-endian 32-bit words at offsets 16 and 20.
  size="$(od -An -tu1 -j16 -N8 "$out/azaudit-demo.png" | awk '{print $1*16777216+$2*65536+$3*256+$4 "x" $5*16777216+$6*65536+$7*256+$8}')"
  check "screenshot is $size, expected 1400x1000" "[ '$size' = 1400x1000 ]"
fi
[ "$fail" = 0 ] || exit 1
echo "html-screenshot: OK: $out/azaudit-demo.html rendered; screenshot $out/azaudit-demo.png"
