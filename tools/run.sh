#!/bin/sh
# `make run`: the whole product on one machine. A private Redis on a unix
# socket, the demo chat backend (simulated buyers, and the agents' workbench
# page), chatmond in front of it, and the supervisors' dashboard, all in the
# foreground. Ctrl-C (or SIGTERM) stops all of them; so does any one ending.
# usage: tools/run.sh CHATMOND CHATMON CONFIG
set -u
chatmond=$1
chatmon=$2
config=$3
py=/usr/bin/python3
backend_port=${CHATMON_DEMO_PORT:-9000}
rundir=$(pwd)/build/run
sock=$rundir/redis.sock

# a key of the config file, as `key: value` on a line of its own section
conf_key() {
	sed -n "/^$1:/,/^[^ #]/s/^  $2:[[:space:]]*\\([^[:space:]#]*\\).*/\\1/p" "$config" | head -1
}
listen=$(sed -n 's/^listen:[[:space:]]*\([^[:space:]#]*\).*/\1/p' "$config")
listen=${listen:-127.0.0.1:8080}
dash_listen=$(conf_key dashboard listen)
dash_listen=${dash_listen:-127.0.0.1:8081}
# the workbench counts down what chatmond enforces (the keys written in the
# file; with only sla.profile set, the backend's defaults, 15 s and 30 s)
secs() {
	echo "$1" | awk '/^[0-9.]+(ms|s|m)?$/ { n = $0 + 0; u = $0; sub(/^[0-9.]+/, "", u)
	    print (u == "ms" ? n / 1000 : u == "m" ? n * 60 : n) }'
}
first=$(secs "$(conf_key sla first_response)")
reply=$(secs "$(conf_key sla reply)")
warn_at=$(conf_key sla warn_at)

mkdir -p "$rundir"
rm -f "$sock"
redis-server --port 0 --unixsocket "$sock" --unixsocketperm 700 \
    --dir "$rundir" --save "" --appendonly no --daemonize no \
    --logfile "$rundir/redis.log" &
redis=$!
"$py" tools/demo_backend.py --listen "127.0.0.1:$backend_port" \
    --chatmond "ws://$listen/" ${first:+--first-response "$first"} \
    ${reply:+--reply "$reply"} ${warn_at:+--warn-at "$warn_at"} &
backend=$!
# wait for the socket, so the first alerts do not wait for a reconnect
i=0
while [ ! -S "$sock" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
"$chatmond" -c "$config" -o "upstream=ws://127.0.0.1:$backend_port/" \
    -o "redis.url=unix:$sock" -o "redis.spool=$rundir/alerts.spool" &
daemon=$!
"$chatmon" dashboard -c "$config" -o "redis.url=unix:$sock" \
    -o "dashboard.root=$(pwd)/web/dashboard" &
dashboard=$!

stop() {
	trap - INT TERM
	kill -TERM "$daemon" "$backend" "$dashboard" 2>/dev/null
	wait "$daemon" "$backend" "$dashboard" 2>/dev/null
	kill -TERM "$redis" 2>/dev/null
	wait "$redis" 2>/dev/null
	exit 0
}
trap stop INT TERM

sleep 1
cat <<MSG

  chatmon demo is running
    agents' workbench (demo):  http://127.0.0.1:$backend_port/?agent=alice
                               (another agent: ?agent=bob, in a second tab)
    supervisors' dashboard:    http://$dash_listen/
    agents connect to:         ws://$listen/?agent=NAME  (chatmond, in front of
                               the demo chat backend ws://127.0.0.1:$backend_port/)
    alerts:                    redis unix:$sock (stream chatmon:alerts:log)
  in another terminal:
    $chatmon tail --redis unix:$sock
  Ctrl-C stops everything.

MSG
# whichever ends first ends the demo
while kill -0 "$daemon" 2>/dev/null && kill -0 "$backend" 2>/dev/null &&
    kill -0 "$dashboard" 2>/dev/null && kill -0 "$redis" 2>/dev/null; do
	sleep 1
done
stop
