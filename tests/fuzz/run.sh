#!/bin/sh
# Runs libFuzzer harnesses one after another (never in parallel), each for
# SECONDS, and fails when any of them found a crash, a leak, a timeout or
# ran out of memory. Each harness runs to its end even when an earlier one
# failed; the summary names every failure.
#
# usage: tests/fuzz/run.sh MODE FUZZ_BUILD SECONDS HARNESS...
#   MODE fuzz:  the work corpus FUZZ_BUILD/corpus/HARNESS is kept and grows
#               from run to run; the seeds in tests/fuzz/corpus/ are read only.
#   MODE smoke: a fresh work corpus FUZZ_BUILD/smoke/HARNESS, from the seeds.
# Logs go to FUZZ_BUILD/logs/MODE-HARNESS.log, what libFuzzer saves of a
# failure to FUZZ_BUILD/artifacts/HARNESS-{crash,leak,timeout,oom}-SHA1.
set -u

mode=$1 build=$2 seconds=$3
shift 3
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 2

failed=
for h in "$@"; do
	bin=$build/fuzz_$h
	seeds=tests/fuzz/corpus/$h
	case $mode in
	fuzz)	work=$build/corpus/$h ;;
	smoke)	work=$build/smoke/$h; rm -rf "$work" ;;
	*)	echo "run.sh: unknown mode $mode (want fuzz or smoke)" >&2; exit 2 ;;
	esac
	mkdir -p "$work" "$build/logs" "$build/artifacts"
	log=$build/logs/$mode-$h.log
	dict=
	[ -f "tests/fuzz/$h.dict" ] && dict=-dict=tests/fuzz/$h.dict
	echo "== fuzz $h ($mode, ${seconds}s): $log"
	# -timeout: one input this slow is a finding; -rss_limit_mb: so is this much memory.
	"$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
	    -print_final_stats=1 -artifact_prefix="$build/artifacts/$h-" \
	    $dict "$work" "$seeds" >"$log" 2>&1
	rc=$?
	# the last status line (#N DONE or the last pulse) and the final stats
	grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE)' "$log" | tail -n 1 | sed 's/^/   /'
	grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$log" |
	    tr '\n' ' ' | sed 's/^/   /; s/ $/\n/'
	if [ $rc -ne 0 ]; then
		failed="$failed $h"
		echo "   FAILED (exit $rc); the end of $log:"
		tail -n 60 "$log" | sed 's/^/   | /'
		for a in $(grep -o "Test unit written to [^ ]*" "$log" | sed 's/.* //'); do
			echo "   reproduce: $bin $a"
		done
	fi
done
if [ -n "$failed" ]; then
	echo "fuzz ($mode): FAILED:$failed"
	exit 1
fi
echo "fuzz ($mode): every harness ran clean: $*"
