#!/usr/bin/env bash
# scripts/browse_check.sh [EXPORT_DIR]  --  offline check that an exported catalog renders in STAC Browser 4.0.1.
# Without EXPORT_DIR it first makes a demo export: a file-backend repository with layout.max_items 3 (so a
# collection is partitioned) holding pystac test-case-4 (62 items) from shared/corpus; the check then clicks
# root > catalog > collection > partition catalog > item.
# Installs what is missing (Debian chromium, playwright-core; never a browser download), builds STAC Browser once
# into a cache, runs shared/tools/stac-browser/browse_check.sh and prints its VERDICT line (exit 0 = PASS).
# Screenshots: $OUT/root.png and $OUT/item.png -- open them and look.
# Env: BROWSE_OUT (/tmp/stac-repository-browse-check), BROWSE_CACHE (~/.cache/stac-repository-browse),
#      STAC_BROWSER_TOOLS (<repo>/../shared/tools/stac-browser), CORPUS (<repo>/../shared/corpus).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="${STAC_BROWSER_TOOLS:-$ROOT/../shared/tools/stac-browser}"; CORPUS="${CORPUS:-$ROOT/../shared/corpus}"
CACHE="${BROWSE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stac-repository-browse}"
OUT="${BROWSE_OUT:-/tmp/stac-repository-browse-check}"; CLI="$ROOT/.venv/bin/stac-repository"
DIST="$CACHE/stac-browser-4.0.1"; PW="$CACHE/pw/node_modules/playwright-core"
log() { echo "browse_check: $*" >&2; }
[ -x "$TOOLS/browse_check.sh" ] || { log "no $TOOLS/browse_check.sh (set STAC_BROWSER_TOOLS)"; exit 2; }
command -v npm >/dev/null && [ "$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null)" -ge 20 ] 2>/dev/null \
  || { log "needs node>=20 and npm"; exit 2; }
mkdir -p "$CACHE" "$OUT"

if [ ! -x /usr/bin/chromium ]; then
  log "installing chromium (apt)"; SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
if [ ! -f "$PW/package.json" ]; then
  log "installing playwright-core into $CACHE/pw"
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --prefix "$CACHE/pw" --no-audit --no-fund --loglevel=error \
    playwright-core@1.65.1 >/dev/null
fi
if [ ! -f "$DIST/index.html" ]; then   # build into a temp folder, then rename: no half-built cache
  log "building STAC Browser into $DIST (~2 min, once)"; rm -rf "$DIST.tmp"
  bash "$TOOLS/build_stac_browser.sh" "$DIST.tmp" >&2 && mv "$DIST.tmp" "$DIST"
fi

if [ $# -ge 1 ]; then CAT="$1"; else
  TMP="$(mktemp -d)"; trap 'rm -rf "$TMP"' EXIT; CAT="$TMP/export"
  log "making a demo export in $CAT (log: $OUT/demo.log)"
  { "$CLI" -r "$TMP/repo" init --yes --id demo --title "Demo" --description "browse_check demo"
    "$CLI" -r "$TMP/repo" config layout.max_items 3
    "$CLI" -r "$TMP/repo" ingest "$CORPUS/pystac/catalogs/test-case-4/catalog.json"
    "$CLI" -r "$TMP/repo" export "$CAT"; } >"$OUT/demo.log" 2>&1 || { cat "$OUT/demo.log" >&2; exit 2; }
fi
rc=0; STAC_BROWSER_DIST="$DIST" PW_CORE="$PW" bash "$TOOLS/browse_check.sh" "$CAT" "$OUT" || rc=$?
[ "$rc" -eq 2 ] || log "screenshots: $OUT/root.png $OUT/item.png"; exit "$rc"
