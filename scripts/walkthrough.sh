#!/usr/bin/env bash
# The README's walkthrough, run for real: `make walkthrough`.
#
# Builds revline, starts `revline serve` on a temporary data directory and
# free loopback ports (port 0, read back from serve's log), runs the product
# brief's steps as a user would and prints the transcript on stdout (each
# command after a "$ " prompt, then its stdout and stderr). Progress and
# failures go to stderr. serve is stopped on the way out, whatever happens.
#
# Needs Go, python3 (the runners) and curl (the requests to the gateway).
# WALKTHROUGH_SERVE_LOG=FILE keeps a copy of serve's log (it shows the order
# in which runners started and stopped).
# A step that does not do what the walkthrough says (a refusal that is not
# refused, a graceful rollout that loses its request, ...) fails the script,
# so the README is never given a transcript of a broken build.
set -euo pipefail

# A user's REVLINE_* settings (a data directory, an external NATS, ...) are
# not the walkthrough's.
unset "${!REVLINE_@}"
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
for tool in go python3 curl; do
	command -v "$tool" >/dev/null || { echo "walkthrough: $tool is required" >&2; exit 1; }
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/revline-walkthrough.XXXXXX")
# Runners run as an unprivileged user when serve runs as root: they must be
# able to reach the runner script in here (but not list the directory).
chmod 0711 "$tmp"
serve_pid=

# fd 3 is the script's stderr, also while a step has its output redirected
# (a signal's trap runs inside the step).
exec 3>&2
log() { echo "walkthrough: $*" >&3; }

# stop_serve stops serve (SIGTERM to its process group: it drains its
# runners), and if it is still there after 20 s kills the group and every
# runner's process group recorded in its pid files.
stop_serve() {
	[[ -n $serve_pid ]] || return 0
	local pid=$serve_pid
	serve_pid=
	kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 200); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		log "serve did not stop within 20 s; killing it and its runners"
		kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
		local f pgid
		for f in "$tmp"/revline-data/runners/pids/*.pid; do
			[[ -e $f ]] || continue
			read -r pgid _ <"$f" || continue
			if [[ $pgid =~ ^[0-9]+$ ]]; then
				kill -KILL -- "-$pgid" 2>/dev/null || true
			fi
		done
	fi
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	# Background requests of a step that failed half-way.
	local job
	for job in $(jobs -p); do
		[[ $job == "$serve_pid" ]] || kill "$job" 2>/dev/null || true
	done
	stop_serve
	if [[ -n ${WALKTHROUGH_SERVE_LOG:-} && -f $tmp/serve.log ]]; then
		cp "$tmp/serve.log" "$WALKTHROUGH_SERVE_LOG" || true
	fi
	if ((rc != 0)) && [[ -f $tmp/serve.log ]]; then
		log "serve's log (last 40 lines):"
		tail -n 40 "$tmp/serve.log" >&3
	fi
	rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log "building revline"
(cd "$root" && go build -o "$tmp/revline" ./cmd/revline)
PATH="$tmp:$PATH"

# serve and the steps run in $tmp: serve keeps its data in the default
# ./revline-data, where the CLI finds the admin token serve makes
# (revline-data/auth/admin.token), as it does for a user in that directory.
cd "$tmp"
log "starting revline serve (data in $tmp/revline-data)"
# setsid: serve leads a process group of its own (its runners have their own
# groups), so the whole group can be signalled on the way out.
setsid_cmd=()
command -v setsid >/dev/null && setsid_cmd=(setsid)
"${setsid_cmd[@]}" revline serve \
	--nats-listen 127.0.0.1:0 --http-addr 127.0.0.1:0 --gateway-addr 127.0.0.1:0 \
	</dev/null >"$tmp/serve.log" 2>&1 3>&- &
serve_pid=$!

# serve logs the addresses it bound once it is ready:
#   ... msg="revline serving" nats=nats://127.0.0.1:P http=http://127.0.0.1:P gateway=http://127.0.0.1:P ...
serving=
for _ in $(seq 600); do
	serving=$(grep -m1 'msg="revline serving"' "$tmp/serve.log" || true)
	[[ -n $serving ]] && break
	kill -0 "$serve_pid" 2>/dev/null || { log "serve exited"; exit 1; }
	sleep 0.1
done
[[ -n $serving ]] || { log "serve did not report its addresses within 60 s"; exit 1; }
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$serving"; }
nats_url=$(field nats)
http_url=$(field http)
gateway_url=$(field gateway)
gw=localhost:${gateway_url##*:}
export REVLINE_NATS_URL=$nats_url
for _ in $(seq 300); do
	curl -fsS -o /dev/null "$http_url/healthz" 2>/dev/null && break
	sleep 0.1
done
curl -fsS -o /dev/null "$http_url/healthz" || { log "serve is not healthy"; exit 1; }
log "serve is ready: NATS $nats_url, HTTP API $http_url, gateway $gateway_url"

# The steps take seconds; a CLI command waits up to 10 minutes for the
# server. A walkthrough still running after 2 minutes hangs: the watchdog
# stops the step's processes (bash runs the TERM trap only once the
# foreground command is done) and the script, which then cleans up.
watchdog() {
	local i pid
	for ((i = 0; i < 1200; i++)); do sleep 0.1; done
	log "still running after 120 s: stopping"
	kill -TERM "$$" 2>/dev/null
	for pid in $(pgrep -P "$$" 2>/dev/null); do
		[[ $pid == "$serve_pid" || $pid == "$BASHPID" ]] || kill -TERM "$pid" 2>/dev/null
	done
}
watchdog &

# The runner with a slow endpoint: GET /slow answers after 3 s.
cat >"$tmp/slow.py" <<'EOF'
import os, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith("/slow"):
            time.sleep(3)
        body = ("hello from %s\n" % os.environ["REVLINE_RUNNER_ID"]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
EOF
chmod 0644 "$tmp/slow.py"

# step reads one command line on stdin, prints it after a prompt, runs it in
# this shell (so `&` and $! work as typed) and prints what it printed. A
# command that fails is a broken walkthrough, unless the step shows its exit
# status itself (echo "exit $?").
out=$tmp/step.out
first=1
step() {
	local cmd rc=0
	cmd=$(cat)
	((first)) || echo
	first=0
	printf '$ %s\n' "$cmd"
	eval "$cmd" >"$out" 2>&1 || rc=$?
	cat "$out"
	if ((rc != 0)); then
		log "step failed (exit $rc): $cmd"
		exit 1
	fi
}
# expect fails the walkthrough unless the last step printed PATTERN (ERE).
expect() {
	grep -Eq -- "$1" "$out" || { log "expected /$1/ in the output of the last step"; exit 1; }
}
# revision_number reads the number (v1) of the revision the last deploy made.
revision_number() { sed -n 's/^Revision \(v[0-9]*\) (.*/\1/p' "$out"; }

step <<EOF
revline deploy my-model --command 'python3 -m http.server \$PORT --bind 127.0.0.1' --message "first version"
EOF
expect 'is deployed and current'
v1=$(revision_number)
[[ $v1 == v1 ]] || { log "the first revision is $v1, not v1"; exit 1; }

step <<EOF
revline deploy my-model --command 'python3 -m http.server \$PORT --bind 127.0.0.1' --machine-type GPU-H100 --message "second version"
EOF
expect 'is deployed and current'
v2=$(revision_number)

step <<EOF
revline deploy my-model --command 'python3 -c "import sys; sys.exit(\"model weights not found\")"' --message broken; echo "exit \$?"
EOF
expect 'model weights not found'
expect 'The current revision did not change'
expect '^exit 1$'

step <<EOF
revline apps list-rev my-model
EOF
expect "^\* +$v2 +[0-9a-f]{8} +deployed"

step <<EOF
revline apps set-rev my-model $v1
EOF
expect "now serves revision $v1"
expect "^Runners moved: 1 of $v1 "

step <<EOF
revline apps set-rev my-model $v1
EOF
expect '^Nothing to do'

step <<EOF
revline apps delete-rev my-model $v1; echo "exit \$?"
EOF
expect 'is the current revision'
expect '^exit 1$'

step <<EOF
revline apps delete-rev my-model $v2
EOF
expect "^Deleted revision $v2 "

step <<EOF
revline apps scale my-model --min-concurrency 2 --keep-alive 5m
EOF
expect '^Scaled my-model'
expect '^Runners settled: 2 ready'

step <<EOF
revline deploy my-model --command 'python3 $tmp/slow.py' --message "with a slow endpoint"
EOF
expect 'is deployed and current'

step <<EOF
curl -s $gw/apps/my-model/
EOF
expect '^hello from '

step <<EOF
curl -si $gw/apps/my-model/ | grep -i x-revline
EOF
expect '^X-Revline-Runner'

step <<EOF
curl -s -o /dev/null -w '%{http_code} after %{time_total}s\n' $gw/apps/my-model/slow > slow.txt & slow=\$!
EOF

step <<EOF
sleep 1; revline apps runners my-model
EOF
expect ' running +1 '

step <<EOF
revline apps rollout my-model
EOF
expect '^Graceful rollout .* complete'

step <<EOF
wait \$slow; cat slow.txt
EOF
expect '^200 '

step <<EOF
curl -s -o /dev/null -w '%{http_code} after %{time_total}s\n' $gw/apps/my-model/slow > slow.txt & slow=\$!
EOF

step <<EOF
sleep 1; revline apps rollout my-model --force
EOF
expect ' 1 in-flight request\(s\) dropped'

step <<EOF
wait \$slow; cat slow.txt
EOF
expect '^502 '

step <<EOF
revline apps runners my-model
EOF
expect 'IN FLIGHT'

step <<EOF
revline apps history my-model
EOF
expect "rolled back to $v1 \\(runtime params kept from $v2\\)"
expect ' scaled keep_alive 60s→300s, min_concurrency 0→2'

step <<EOF
revline audit my-model --type 'revision.*,app.*,rollout.*'
EOF
expect 'deploy of v3 failed: "runner exited with status 1'
expect 'force rollout of v4 completed: 2 runner\(s\) replaced, 1 in-flight request\(s\) dropped'

step <<EOF
revline apps show my-model
EOF
expect '^min_concurrency +2 +inherited from v1 on deploy of v4'
expect '^machine_type +XS +deploy of v4'

step <<EOF
revline apps blame my-model min_concurrency
EOF
expect ' 2 +scale '

log "done; stopping serve"
