#!/usr/bin/env bash
# Vigil's durability promise: a write answered 2xx survives kill -9. The remote-write load
# generator (bench/rwgen) sends 320,000 samples from 4 connections and logs each batch
# only after its 2xx; Vigil is killed with SIGKILL in the middle, restarted on the same
# data dir, and `vigil tsdb dump` must hold every acknowledged sample with its exact value
# and timestamp, no sample that was never sent, and no sample twice.
# Without an option it runs with the defaults, `storage.fsync: periodic`: writes are
# acknowledged once they are in LevelDB's log file, and a background thread fsyncs the
# logs every second while the load runs. With --no-fsync the same is checked under
# `storage.fsync: false` (= never; no fsync at all), with --fsync-always under
# `storage.fsync: always` (fsync before each acknowledgement). Without fsync before the
# acknowledgement the page cache still holds the writes when only the process dies.
source "$(dirname "$0")/lib.sh"
need_rwgen

VIGIL_ARGS=()
case "${1:-}" in
--no-fsync) mode=false ;;
--fsync-always) mode=always ;;
'') mode= ; log "storage.fsync periodic (the default)" ;;
*) die "unknown option $1 (--no-fsync, --fsync-always)" ;;
esac
if [ -n "$mode" ]; then
    printf 'storage:\n  fsync: %s\n' "$mode" >"$T/vigil.yml"
    VIGIL_ARGS=(--config "$T/vigil.yml")
    log "storage.fsync $mode"
fi

vigil_start "${VIGIL_ARGS[@]}"

# 2,000 series x 160 samples, 15 s apart, ending now (inside the 30m out-of-order window
# is irrelevant: each series' samples arrive in order).
START=$(( ($(date +%s) - 160 * 15) * 1000 ))
RW=(--series 2000 --samples 160 --batch 400 --concurrency 4 --interval 15000 --start "$START")
start_bg rwgen "$RWGEN_BIN" --url "$VIGIL_URL/api/v1/write" "${RW[@]}" --ack-log "$T/ack.log" \
    --retries 0 --max-errors 3 --timeout-ms 5000 --max-seconds 120
RWGEN_PID=$BG_PID

# Kill once a fair share (100 of 800 batches) is acknowledged, while writes are in flight.
# A tight poll (20 ms, at most 3000 times) so that a fast server is still caught mid-load.
for ((i = 0; i < 3000; i++)); do
    [ -f "$T/ack.log" ] && [ "$(wc -l <"$T/ack.log")" -ge 100 ] && break
    kill -0 "$RWGEN_PID" 2>/dev/null || break
    sleep 0.02
done
[ -f "$T/ack.log" ] && [ "$(wc -l <"$T/ack.log")" -ge 100 ] || {
    tail -n 5 "$T/rwgen.log"
    die "100 batches acknowledged within 60 s"
}
vigil_kill9
n_at_kill=$(wc -l <"$T/ack.log")
log "vigil killed with SIGKILL after $n_at_kill acknowledged batches"

# rwgen now fails fast (connection refused) and stops after 3 errors per thread.
wait_until 60 bash -c "! kill -0 $RWGEN_PID 2>/dev/null" || fail "rwgen stopped within 60 s of the kill"
stop_pid "$RWGEN_PID" 5
n_acked=$(wc -l <"$T/ack.log")
check_ge "batches acknowledged before the kill" 100 "$n_acked"
if [ "$n_acked" -ge 800 ]; then
    fail "the kill came in the middle of the load (all 800 batches were acknowledged first)"
fi

# Restart on the same data: the head is rebuilt from LevelDB's log.
vigil_start "${VIGIL_ARGS[@]}"
check_eq "restarted vigil answers /-/healthy" 200 "$(http_code "$VIGIL_URL/-/healthy")"
# After every sample of the plan (which ends at START + 159 * 15 s), and not in the future.
AFTER_START=$(( START + 160 * 15000 ))
"$RWGEN_BIN" --url "$VIGIL_URL/api/v1/write" --series 10 --samples 1 --interval 15000 \
    --start "$AFTER_START" --quiet >"$T/rwgen-after.log" 2>&1 &&
    pass "restarted vigil accepts new writes" ||
    fail "restarted vigil accepts new writes: $(tail -n 2 "$T/rwgen-after.log")"
vigil_stop

# What was acknowledged, what could have been stored at all, and what is stored.
"$RWGEN_BIN" "${RW[@]}" --print-acked "$T/ack.log" >"$T/acked.raw"
samples canon "$T/acked.raw" >"$T/acked.txt"
seq 0 799 | sed 's/$/ 0 0 0/' >"$T/all.log"
"$RWGEN_BIN" "${RW[@]}" --print-acked "$T/all.log" >"$T/all.raw"
samples canon "$T/all.raw" >"$T/all.txt"
vigil_dump "$T/dump.raw"
samples canon "$T/dump.raw" >"$T/dump-all.txt"
# Leave out the 10 samples written after the restart (newer than the whole plan).
awk -v s="$AFTER_START" '$NF < s' "$T/dump-all.txt" >"$T/dump.txt"
check_eq "the 10 samples written after the restart are stored" 10 \
    "$(awk -v s="$AFTER_START" '$NF >= s' "$T/dump-all.txt" | wc -l)"

check_eq "acknowledged samples (400 per batch)" $((n_acked * 400)) "$(wc -l <"$T/acked.txt")"
check_subset "every acknowledged sample is in the store, exact value and timestamp" "$T/acked.txt" "$T/dump.txt"
check_subset "every stored sample was sent by rwgen" "$T/dump.txt" "$T/all.txt"
dups=$(awk '{print $1, $NF}' "$T/dump.txt" | sort | uniq -d | wc -l)
check_eq "no series holds two samples with one timestamp" 0 "$dups"
log "stored $(wc -l <"$T/dump.txt") samples; acknowledged $(wc -l <"$T/acked.txt")"
