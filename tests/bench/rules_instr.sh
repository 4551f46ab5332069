#!/bin/sh
# Instructions per message (valgrind --tool=callgrind) for the rules engine
# and for the naive baseline: repeatable whatever else the machine is doing.
# usage: rules_instr.sh BENCH_RULES CORPUS NAME=DIR...
set -eu
bench=$1 corpus=$2
shift 2
count() {	# count MODE PASSES DIR -> instructions
	valgrind --tool=callgrind --callgrind-out-file=/dev/null \
	    "$bench" --passes "$2" --mode "$1" "$corpus" "$3" 2>&1 >/dev/null |
	    sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
n=$(grep -c . "$corpus")
passes=5
echo
echo "instructions per message (callgrind, $passes passes over $n messages, loading subtracted)"
echo
echo "| pack | engine | with windows | naive | naive / engine |"
echo "|---|---:|---:|---:|---:|"
for arg; do
	name=${arg%%=*} dir=${arg#*=}
	# each mode less its own run of 0 passes (loading, and what a mode
	# does once: the naive one JIT-compiles what the engine does not)
	e=$(( ($(count engine $passes "$dir") - $(count engine 0 "$dir")) / (passes * n) ))
	w=$(( ($(count window $passes "$dir") - $(count window 0 "$dir")) / (passes * n) ))
	v=$(( ($(count naive $passes "$dir") - $(count naive 0 "$dir")) / (passes * n) ))
	echo "| $name | $e | $w | $v | $(awk "BEGIN { printf \"%.1f×\", $v / $e }") |"
done
