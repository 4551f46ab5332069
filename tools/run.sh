#!/bin/sh
# `make run`: the demo chat backend and chatmond in front of it, in the
# foreground. Ctrl-C (or SIGTERM) stops both.
# usage: tools/run.sh CHATMOND CONFIG
set -u
chatmond=$1
config=$2
py=/usr/bin/python3
backend_port=${CHATMON_DEMO_PORT:-9000}

"$py" tools/demo_backend.py --listen "127.0.0.1:$backend_port" &
backend=$!
"$chatmond" -c "$config" -o "upstream=ws://127.0.0.1:$backend_port/" &
daemon=$!

stop() {
	trap - INT TERM
	kill -TERM "$daemon" "$backend" 2>/dev/null
	wait "$daemon" "$backend" 2>/dev/null
	exit 0
}
trap stop INT TERM

listen=$(sed -n 's/^listen:[[:space:]]*\([^[:space:]#]*\).*/\1/p' "$config")
sleep 1
cat <<MSG

  chatmon demo is running
    demo chat backend:  ws://127.0.0.1:$backend_port/
    agents connect to:  ws://${listen:-127.0.0.1:8080}/?agent=alice
  try:  /usr/bin/python3 -m websockets 'ws://${listen:-127.0.0.1:8080}/?agent=alice'
  Ctrl-C stops both.

MSG
# whichever ends first ends the demo
while kill -0 "$daemon" 2>/dev/null && kill -0 "$backend" 2>/dev/null; do
	sleep 1
done
stop
