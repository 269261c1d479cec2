#!/bin/sh
# t_ul_concurrent.sh - many associations at once against one node: 12 storescu (each sending
# the same small set of files, some with a 4 KiB Maximum Length so every PDU is small) and 12
# echoscu in parallel, all must succeed; then one large instance with a 4 KiB PDU (hundreds of
# P-DATA-TF, flow control). The node must log one "association released" per association and
# stop cleanly.
set -u
: "${MITRAL:?MITRAL must point to the mitral binary}"
SRC=${MT_SOURCE_DIR:-.}
TD="$SRC/../shared/testdata"
export TCP_NODELAY=1
command -v storescu >/dev/null || { echo "SKIP: storescu not installed"; exit 0; }
[ -d "$TD" ] || { echo "SKIP: no testdata at $TD"; exit 0; }

DIR=$(mktemp -d /tmp/mt_ul_conc.XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$MITRAL" serve --bind 127.0.0.1 --port "$PORT" --data "$DIR/data" >"$DIR/log" 2>&1 &
PID=$!
fail() { echo "FAIL: $*"; kill "$PID" 2>/dev/null; tail -30 "$DIR/log"; rm -rf "$DIR"; exit 1; }
i=0
until echoscu -aec MITRAL 127.0.0.1 "$PORT" >/dev/null 2>&1; do
    i=$((i + 1)); [ $i -lt 200 ] || fail "node does not answer"; sleep 0.05
done

FILES="$TD/pydicom/test_files/MR_small.dcm $TD/pydicom/test_files/CT_small.dcm
       $TD/pydicom/test_files/MR_small_implicit.dcm $TD/pydicom/test_files/MR_small_bigendian.dcm"
PIDS=""
n=0
while [ $n -lt 12 ]; do
    PDU=16384; [ $((n % 2)) -eq 0 ] && PDU=4096
    storescu -aet "SCU$n" -aec MITRAL -pdu $PDU 127.0.0.1 "$PORT" $FILES >"$DIR/scu$n.out" 2>&1 &
    PIDS="$PIDS $!"
    echoscu -aet "ECHO$n" -aec MITRAL 127.0.0.1 "$PORT" >"$DIR/echo$n.out" 2>&1 &
    PIDS="$PIDS $!"
    n=$((n + 1))
done
bad=0
for p in $PIDS; do wait "$p" || bad=$((bad + 1)); done
[ $bad -eq 0 ] || { cat "$DIR"/scu*.out | grep -E "^E|^F" | head; fail "$bad concurrent peer(s) failed"; }
echo "ok - 12 storescu + 12 echoscu in parallel succeeded"

BIG="$TD/pydicom-data/MR2_UNCR.dcm"
if [ -f "$BIG" ]; then
    storescu -aec MITRAL -pdu 4096 127.0.0.1 "$PORT" "$BIG" >"$DIR/big.out" 2>&1 ||
        { cat "$DIR/big.out"; fail "large instance in 4 KiB PDUs"; }
    echo "ok - large instance in 4 KiB PDUs stored"
fi

kill -TERM "$PID"
wait "$PID"
RC=$?
[ $RC -eq 0 ] || fail "node exit code $RC"
grep -q -E "AddressSanitizer|LeakSanitizer|runtime error" "$DIR/log" && fail "sanitizer report"
REL=$(grep -c "association released" "$DIR/log")
# 1 (start-up probe) + 24 + 1 big, at least
[ "$REL" -ge 25 ] || fail "only $REL 'association released' lines"
STORED=$(grep "association released" "$DIR/log" | sed -n 's/.*stored=\([0-9]*\).*/\1/p' |
         awk '{s += $1} END {print s}')
echo "ok - $REL associations released, $STORED instances stored, node stopped cleanly"
rm -rf "$DIR"
exit 0
