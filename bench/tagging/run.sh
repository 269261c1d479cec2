#!/bin/sh
# bench/tagging/run.sh - the issue-5 targets of the CMR tagger on a generated set.
#
#   bench/tagging/run.sh [STUDIES (default 200)] [MITRAL binary]
#
# Generates STUDIES synthetic CMR studies with a fresh seed (tests/tagging/gen_cmr_fixtures.py,
# 3 vendors x informative / missing / misleading names x 4 perfusion schemes), tags them with
# `mitral tag`, and scores against the truth (tests/tagging/score.py): accuracy >= 99 % where
# the description is informative, >= 95 % where geometry must decide, unknown <= 3 %, never a
# wrong tag at confidence >= 0.9. Then the rules throughput with the features already
# extracted (`mitral tag --bench`; target >= 50,000 series/s; use a Release build).
# Not part of ctest (it takes minutes: about 120,000 files for 200 studies).
# The last target, "tagging adds < 2% to end-to-end ingest time", is bench/tagging/ingest.py
# (a running node, tagging on vs off).
set -eu
N=${1:-200}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
MITRAL=${2:-$SRC/build/mitral}
PY=python3
"$PY" -c "import pydicom" 2>/dev/null || PY=/usr/bin/python3
SEED=${MT_TAG_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
echo "seed $SEED, $N studies"
"$PY" "$SRC/tests/tagging/gen_cmr_fixtures.py" --out "$TMP/fx" --studies "$N" --seed "$SEED" \
    --phases 12 --dynamics 22
/usr/bin/time -f "mitral tag: %e s, %M KB" "$MITRAL" tag "$TMP/fx" > "$TMP/tags.csv"
rc=0
"$PY" "$SRC/tests/tagging/score.py" --quiet "$TMP/fx/truth.csv" "$TMP/tags.csv" || rc=1
"$MITRAL" tag --bench 20 "$TMP/fx" 2>&1 >/dev/null | grep bench
exit $rc
