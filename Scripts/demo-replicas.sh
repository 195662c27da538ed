#!/usr/bin/env bash
# make demo-replicas: failover, end to end on this machine. A PostgreSQL cluster of its own (initdb into a temporary
# directory, a Unix socket only), two deployctl server replicas on it, HAProxy in TCP mode in front of them (every new
# connection to the first replica while it is up), three agents pointed at HAProxy, a deployment whose hook takes
# a few seconds, and `kill -9` of the replica serving the agents while they run it. The deployment finishes
# through the other replica. Everything it starts is stopped by PID at the end, and its directory removed.
set -euo pipefail
cd "$(dirname "$0")/.."
deployctl=$(realpath "${DEPLOYCTL:-.build/debug/deployctl}")
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
demo=$(mktemp -d "${TMPDIR:-/tmp}/deployctl-replicas.XXXXXX")
chmod 755 "$demo"
pids=()
postmaster=""
cleanup() {
  # Newest first: the agents stop (finishing and reporting the event they run) while a replica still answers.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill "${pids[$i]}" 2>/dev/null || true
    wait "${pids[$i]}" 2>/dev/null || true
  done
  if [ -n "$postmaster" ]; then kill -INT "$postmaster" 2>/dev/null || true; while kill -0 "$postmaster" 2>/dev/null; do sleep 0.1; done; fi
  rm -rf "$demo"
}
trap cleanup EXIT
say() { printf '\n== %s\n' "$*"; }
as_postgres=()
[ "$(id -u)" -ne 0 ] || { as_postgres=(runuser -u postgres --); mkdir "$demo/pg"; chown postgres: "$demo/pg"; }
[ -d "$demo/pg" ] || mkdir "$demo/pg"

say "PostgreSQL: initdb into $demo/pg, listening on a Unix socket there only"
"${as_postgres[@]}" "$pg_bin/initdb" -D "$demo/pg/data" -U postgres -A trust -E UTF8 --locale=C >/dev/null
"${as_postgres[@]}" "$pg_bin/pg_ctl" -D "$demo/pg/data" -o "-k $demo/pg -c listen_addresses=''" -l "$demo/pg/log" -w start >/dev/null
postmaster=$(head -1 "$demo/pg/data/postmaster.pid")
"$pg_bin/psql" -h "$demo/pg" -U postgres -qc "CREATE DATABASE deployctl" postgres
export DEPLOYCTL_DATABASE_URL="postgresql:///deployctl?host=$demo/pg&user=postgres"
echo "DEPLOYCTL_DATABASE_URL=$DEPLOYCTL_DATABASE_URL"

say "An admin key, made in the database (no server needed)"
key=$("$deployctl" create-access-key --user-name demo --role admin)
export AWS_ACCESS_KEY_ID=$(printf '%s' "$key" | python3 -c 'import json,sys; print(json.load(sys.stdin)["AccessKey"]["AccessKeyId"])')
export AWS_SECRET_ACCESS_KEY=$(printf '%s' "$key" | python3 -c 'import json,sys; print(json.load(sys.stdin)["AccessKey"]["SecretAccessKey"])')
export AWS_DEFAULT_REGION=us-east-1

start_replica() {
  local name=$1
  "$deployctl" server --listen 127.0.0.1:0 --tls-dir "$demo/shared/tls" --artifacts-dir "$demo/shared/artifacts" \
    --poll-hold 5 --state "$demo/$name-unused.db" >"$demo/$name.out" 2>"$demo/$name.log" &
  pids+=($!)
  eval "${name}_pid=$!"
  for _ in $(seq 100); do grep -q serving "$demo/$name.out" 2>/dev/null && break; sleep 0.1; done
  eval "${name}_url=$(sed -n 's/.*serving \(https:[^ ]*\).*/\1/p' "$demo/$name.out")"
  grep -q serving "$demo/$name.out" || { echo "replica $name did not start:"; cat "$demo/$name.log"; exit 1; }
}
say "Two replicas on the same database, sharing --tls-dir and --artifacts-dir"
mkdir -p "$demo/shared"
start_replica a
start_replica b
echo "replica a: $a_url (pid $a_pid)"
echo "replica b: $b_url (pid $b_pid)"
export AWS_CA_BUNDLE="$demo/shared/tls/ca.pem"

say "HAProxy in TCP mode in front of them (TLS passes through; replica a first, b when a is down)"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$demo/haproxy.cfg" <<EOF
defaults
    mode tcp
    # A connection the dead replica refuses, before the health check has marked it down, goes to the other one.
    option redispatch
    retries 3
    timeout connect 2s
    timeout client 120s
    timeout server 120s
frontend deployctl
    bind 127.0.0.1:$port
    default_backend replicas
backend replicas
    balance first
    server a ${a_url#https://} check inter 300ms fall 1 rise 2
    server b ${b_url#https://} check inter 300ms fall 1 rise 2
EOF
haproxy -db -f "$demo/haproxy.cfg" >/dev/null 2>&1 &
pids+=($!)
balancer="https://127.0.0.1:$port"
sleep 0.5
echo "balancer: $balancer"

say "Three hosts registered in the database, their agents pointed at the balancer"
for host in web-1 web-2 web-3; do
  "$deployctl" register --instance-name "$host" --tags Key=fleet,Value=web --endpoint-url "$balancer" \
    --tls-dir "$demo/shared/tls" --output-dir "$demo/$host" >/dev/null
  sed -i "s#/etc/codedeploy-agent/conf/#$demo/$host/#; s#/opt/codedeploy-agent/deployment-root#$demo/$host/root#" "$demo/$host/codedeployagent.yml"
  env -u DEPLOYCTL_DATABASE_URL "$deployctl" agent run --config "$demo/$host/codedeployagent.yml" --install-root "$demo/$host/fs" \
    2>"$demo/$host.log" &
  pids+=($!)
done

say "An application whose AfterInstall hook takes 4 seconds, pushed and deployed through the balancer"
mkdir -p "$demo/app/site" "$demo/app/scripts"
echo "release 1" >"$demo/app/site/index.html"
printf '#!/bin/bash\nsleep 4\n' >"$demo/app/scripts/slow.sh"
chmod +x "$demo/app/scripts/slow.sh"
printf 'version: 0.0\nos: linux\nfiles:\n  - source: site\n    destination: /srv/app\nhooks:\n  AfterInstall:\n    - location: scripts/slow.sh\n      timeout: 60\n' \
  >"$demo/app/appspec.yml"
remote() { env -u DEPLOYCTL_DATABASE_URL "$deployctl" "$@" --endpoint-url "$balancer"; }
remote create-application --application-name web >/dev/null
remote create-deployment-group --application-name web --deployment-group-name fleet \
  --on-premises-instance-tag-filters Key=fleet,Value=web,Type=KEY_AND_VALUE --deployment-config-name CodeDeployDefault.AllAtOnce >/dev/null
remote push --application-name web --s3-location s3://releases/web-1.zip --source "$demo/app" >/dev/null
id=$(remote create-deployment --application-name web --deployment-group-name fleet \
  --s3-location bucket=releases,key=web-1.zip,bundleType=zip --output text)
echo "deployment $id"

say "Waiting until the agents run AfterInstall, then kill -9 of replica a (pid $a_pid), which serves them"
for _ in $(seq 200); do
  running=$("$pg_bin/psql" -h "$demo/pg" -U postgres -XAtqc \
    "SELECT COUNT(*) FROM host_commands WHERE deployment_id = '$id' AND event_name = 'AfterInstall'" deployctl)
  [ "$running" = 3 ] && break
  sleep 0.1
done
kill -9 "$a_pid"
started=$(date +%s%N)
echo "killed replica a while $running agents ran AfterInstall"

say "The deployment goes on through replica b"
remote wait deployment-successful --deployment-id "$id" --timeout 120
echo "finished $(( ($(date +%s%N) - started) / 1000000 )) ms after the kill"
remote get-deployment --deployment-id "$id" --query 'deploymentInfo.[status, deploymentOverview]' --output json
for host in web-1 web-2 web-3; do printf '%s: /srv/app/index.html = %s\n' "$host" "$(cat "$demo/$host/fs/srv/app/index.html")"; done
