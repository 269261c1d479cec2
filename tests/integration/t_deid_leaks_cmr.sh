#!/bin/sh
# t_deid_leaks_cmr.sh - `mitral deid --profile cmr-registry` on every file of ../shared/testdata and on
# generated CMR studies full of identifiers: no identifying value of an input in the output
# bytes (raw, upper-cased, dates in DA/ISO/European form), dcmdump reads every output, the
# attributes the profile retains are intact, and (with dicom3tools installed) dciodvfy finds no
# new structural error (tests/deid/check_leaks.py does the work).
set -u
: "${MITRAL:?MITRAL must name the mitral executable}"
: "${MT_SOURCE_DIR:?}"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
if ! "$PY" -c "import pydicom" 2>/dev/null; then echo "skipped: pydicom not installed"; exit 0; fi
if ! command -v dcmdump >/dev/null; then echo "skipped: dcmtk's dcmdump not installed"; exit 0; fi
if [ ! -d "$MT_SOURCE_DIR/../shared/testdata" ]; then
    echo "testdata absent: generated inputs only"
    exec "$PY" -W ignore "$MT_SOURCE_DIR/tests/deid/check_leaks.py" --cmd "$MITRAL deid" \
        --profile cmr-registry --generated-only
fi
DCIODVFY=""
command -v dciodvfy >/dev/null && DCIODVFY=--dciodvfy
exec "$PY" -W ignore "$MT_SOURCE_DIR/tests/deid/check_leaks.py" --cmd "$MITRAL deid" --profile cmr-registry \
    $DCIODVFY
