#!/bin/sh
# `make run`: the whole product on one machine. A private Redis on a unix
# socket, the demo chat backend (simulated buyers, and the agents' workbench
# page), chatmond in front of it, the supervisors' dashboard, and chatmon
# notify pushing critical alerts to a stand-in DingTalk robot. Their logs
# go to build/run/*.log; the terminal keeps the banner, one line per alert
# (`chatmon tail`) and one per message the robot receives. Ctrl-C (or
# SIGTERM) stops all of them; so does any one of them ending, with the end
# of its log. Each part runs in a session of its own (setsid: the same
# pid), so that the terminal's Ctrl-C reaches this script alone and it
# stops them in order, chatmond before the Redis it flushes to; had they
# had the terminal's SIGINT too, Redis went at once and chatmond's exit
# was taken for a failure.
# usage: tools/run.sh CHATMOND CHATMON CONFIG (conf/demo.yaml: its
# redis.url names the socket under build/run/)
set -u
chatmond=$1
chatmon=$2
config=$3
py=/usr/bin/python3
here=$(cd "$(dirname "$0")" && pwd)
backend_port=${CHATMON_DEMO_PORT:-9000}

# a key of the config file, as `key: value` on a line of its own section
conf_key() {
	sed -n "/^$1:/,/^[^ #]/s/^  $2:[[:space:]]*\\([^[:space:]#]*\\).*/\\1/p" "$config" | head -1
}
# the private Redis listens where the configuration says (relative: to the
# file), and the logs go beside its socket
url=$(conf_key redis url)
case $url in
unix:/*) sock=${url#unix:} ;;
unix:?*) d=$(dirname "$config")/$(dirname "${url#unix:}")
	mkdir -p "$d" && sock=$(cd "$d" && pwd)/$(basename "${url#unix:}") || exit 2 ;;
*)	echo "run.sh: $config: redis.url must be a unix: socket (got '$url')" >&2
	exit 2 ;;
esac
rundir=$(dirname "$sock")
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
# and shows times in the shop's zone, as the dashboard and chatmon tail do
tz=$(conf_key sla timezone | tr -d "\"'")
# the stand-in robot: the first route's local URL (/dingtalk/NAME) and secret
robot_url=$(sed -n 's|^ *url:[[:space:]]*http://127\.0\.0\.1:\([0-9]*\)/\([a-z]*\)/\([^[:space:]#?]*\).*|\1 \3|p' "$config" | head -1)
robot_port=${robot_url%% *}
robot_name=${robot_url#* }
robot_secret=$(sed -n 's/^ *secret:[[:space:]]*\([^[:space:]#]*\).*/\1/p' "$config" | head -1)

mkdir -p "$rundir"
# one demo per run directory: a second `make run` must not take the first
# one's Redis socket or truncate its logs (the lock is held by every part
# started below, so it lasts as long as any of them runs)
exec 9>"$rundir/run.lock"
if ! flock -n 9; then
	echo "run.sh: a demo is already running from $rundir (stop it first: Ctrl-C in its terminal)" >&2
	exit 2
fi
rm -f "$sock"
# the dashboard's logins (dashboard.users, relative to the file): the demo's
# one supervisor, demo / demo, written the first time
users=$(conf_key dashboard users)
case $users in
"") ;;
/*) ;;
*) users=$(cd "$(dirname "$config")" && pwd)/$users ;;
esac
if [ -n "$users" ] && [ ! -e "$users" ]; then
	mkdir -p "$(dirname "$users")"
	echo demo | "$chatmon" passwd -f "$users" demo supervisor >/dev/null 2>&1 ||
	    { echo "run.sh: cannot write $users" >&2; exit 2; }
fi
setsid redis-server --port 0 --unixsocket "$sock" --unixsocketperm 700 \
    --dir "$rundir" --save "" --appendonly no --daemonize no \
    --logfile "$rundir/redis.log" &
redis=$!
setsid "$py" "$here/demo_backend.py" --listen "127.0.0.1:$backend_port" \
    --chatmond "ws://$listen/" ${first:+--first-response "$first"} \
    ${reply:+--reply "$reply"} ${warn_at:+--warn-at "$warn_at"} ${tz:+"--timezone=$tz"} \
    >"$rundir/demo_backend.log" 2>&1 &
backend=$!
# wait for the socket, so the first alerts do not wait for a reconnect
i=0
while [ ! -S "$sock" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
setsid "$chatmond" -c "$config" -o "upstream=ws://127.0.0.1:$backend_port/" \
    >"$rundir/chatmond.log" 2>&1 &
daemon=$!
setsid "$chatmon" dashboard -c "$config" >"$rundir/dashboard.log" 2>&1 &
dashboard=$!
robot=
if [ -n "$robot_port" ]; then
	setsid "$py" "$here/../tests/peers/robot.py" --listen "127.0.0.1:$robot_port" --print \
	    ${robot_secret:+--secret "$robot_name=$robot_secret"} 2>"$rundir/robot.log" &
	robot=$!
fi
setsid "$chatmon" notify -c "$config" >"$rundir/notify.log" 2>&1 &
notify=$!

stop() {
	trap - INT TERM
	kill -TERM "$daemon" "$backend" "$dashboard" "$notify" ${robot:+"$robot"} ${tail:+"$tail"} 2>/dev/null
	wait "$daemon" "$backend" "$dashboard" "$notify" ${robot:+"$robot"} ${tail:+"$tail"} 2>/dev/null
	kill -TERM "$redis" 2>/dev/null
	wait "$redis" 2>/dev/null
	exit "${1:-0}"
}
trap stop INT TERM

sleep 1
cat <<MSG

  chatmon demo is running
    agents' workbench (demo):  http://127.0.0.1:$backend_port/?agent=alice
                               (another agent: ?agent=bob, in a second tab)
    supervisors' dashboard:    http://$dash_listen/${users:+  (log in: demo / demo)}
    agents connect to:         ws://$listen/?agent=NAME  (chatmond, in front of
                               the demo chat backend ws://127.0.0.1:$backend_port/)
    logs:                      $rundir/{chatmond,dashboard,notify,demo_backend,redis${robot:+,robot}}.log
    pushed alerts:             critical ones to a stand-in DingTalk robot${robot_port:+ on 127.0.0.1:$robot_port}
                               (chatmon notify; its lines below start with robot:)
  in another terminal, the same alerts from the start:
    $chatmon tail -c $config --since 0
  Ctrl-C stops everything. The alerts, one line each, as they come:

MSG
tail=
setsid "$chatmon" tail -c "$config" --since -0 &
tail=$!
# whichever ends first ends the demo, and says why
while :; do
	for p in daemon:chatmond backend:demo_backend dashboard:dashboard notify:notify \
	    redis:redis ${robot:+robot:robot}; do
		eval "pid=\$${p%%:*}"
		kill -0 "$pid" 2>/dev/null && continue
		echo
		echo "  ${p#*:} stopped; the end of $rundir/${p#*:}.log:"
		tail -n 5 "$rundir/${p#*:}.log" | sed 's/^/    /'
		stop 1
	done
	sleep 1
done
