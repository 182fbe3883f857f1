#!/usr/bin/env bash
# The main job, end to end: init a repository, ingest real sample catalogs, show history and
# a stored object, prune, and export a static catalog that pystac reads back.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
CORPUS=${CORPUS:-../shared/corpus}
OUT=${DEMO_OUT:-demo-output}
BACKEND=${BACKEND:-$(.venv/bin/stac-repository show-backends --json | .venv/bin/python -c 'import json,sys; names=[b["name"] for b in json.load(sys.stdin)]; print("git" if "git" in names else "file")')}
rm -rf "$OUT"
SR=".venv/bin/stac-repository -r $OUT/repo"
set -x
$SR --backend "$BACKEND" init --yes --id demo --title "Demo catalog" --description "stac-repository demo" --license CC-BY-4.0
$SR ingest "$CORPUS/pystac/catalogs/test-case-1/catalog.json" "$CORPUS/stactools/data-files/planet-disaster/collection.json"
$SR ingest "$CORPUS/pystac/item-collection/sample-item-collection.json" --parent planet-disaster-data
$SR ingest "$CORPUS/pystac/catalogs/test-case-1/catalog.json"   # unchanged: skipped
$SR history --verbose || true                                     # the file backend keeps no history
$SR show area-1-1-imagery | head -20
$SR prune country-2 --extract "$OUT/country-2"
$SR export "$OUT/export"
$SR backup "$OUT/backup"
set +x
.venv/bin/python "$CORPUS/walk_check.py" "$OUT/export/catalog.json"
echo "demo done: repository in $OUT/repo, static catalog in $OUT/export"
