#!/bin/sh
# `make run`: a private Redis on a unix socket, the demo chat backend, and
# chatmond in front of it, in the foreground. Ctrl-C (or SIGTERM) stops all.
# usage: tools/run.sh CHATMOND CHATMON CONFIG
set -u
chatmond=$1
chatmon=$2
config=$3
py=/usr/bin/python3
backend_port=${CHATMON_DEMO_PORT:-9000}
rundir=$(pwd)/build/run
sock=$rundir/redis.sock

mkdir -p "$rundir"
rm -f "$sock"
redis-server --port 0 --unixsocket "$sock" --unixsocketperm 700 \
    --dir "$rundir" --save "" --appendonly no --daemonize no \
    --logfile "$rundir/redis.log" &
redis=$!
"$py" tools/demo_backend.py --listen "127.0.0.1:$backend_port" &
backend=$!
# wait for the socket, so the first alerts do not wait for a reconnect
i=0
while [ ! -S "$sock" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
"$chatmond" -c "$config" -o "upstream=ws://127.0.0.1:$backend_port/" \
    -o "redis.url=unix:$sock" -o "redis.spool=$rundir/alerts.spool" &
daemon=$!

stop() {
	trap - INT TERM
	kill -TERM "$daemon" "$backend" 2>/dev/null
	wait "$daemon" "$backend" 2>/dev/null
	kill -TERM "$redis" 2>/dev/null
	wait "$redis" 2>/dev/null
	exit 0
}
trap stop INT TERM

listen=$(sed -n 's/^listen:[[:space:]]*\([^[:space:]#]*\).*/\1/p' "$config")
sleep 1
cat <<MSG

  chatmon demo is running
    demo chat backend:  ws://127.0.0.1:$backend_port/
    agents connect to:  ws://${listen:-127.0.0.1:8080}/?agent=alice
    alerts:             redis unix:$sock (stream chatmon:alerts:log)
  try, in other terminals:
    /usr/bin/python3 -m websockets 'ws://${listen:-127.0.0.1:8080}/?agent=alice'
    $chatmon tail --redis unix:$sock
  Ctrl-C stops everything.

MSG
# whichever ends first ends the demo
while kill -0 "$daemon" 2>/dev/null && kill -0 "$backend" 2>/dev/null &&
    kill -0 "$redis" 2>/dev/null; do
	sleep 1
done
stop
