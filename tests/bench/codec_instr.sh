#!/bin/sh
# Instructions per frame (valgrind --tool=callgrind) of the codec and of the
# jansson document it replaced: repeatable whatever else the machine does.
# usage: codec_instr.sh BENCH_CODEC
set -eu
bench=$1
count() {	# count MODE PASSES -> instructions
	valgrind --tool=callgrind --callgrind-out-file=/dev/null \
	    "$bench" --passes "$2" --mode "$1" 2>&1 >/dev/null |
	    sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
passes=2000 frames=4
echo
echo "instructions per frame (callgrind, $passes passes over $frames frames, start-up subtracted)"
echo
echo "| codec | jansson | jansson / codec |"
echo "|---:|---:|---:|"
base=$(count codec 0)
c=$(( ($(count codec $passes) - base) / (passes * frames) ))
j=$(( ($(count jansson $passes) - base) / (passes * frames) ))
echo "| $c | $j | $(awk "BEGIN { printf \"%.1f×\", $j / $c }") |"
