#!/usr/bin/env bash
# AWS's own CodeDeploy agent deploys from deployctl server, configured only through the files `deployctl register`
# wrote (issue 11). Needs a checkout of github.com/aws/aws-codedeploy-agent (1.8.x) in AWS_CODEDEPLOY_AGENT_DIR;
# this script never downloads it. Installs Debian's ruby packages the agent needs, then:
#   1. starts deployctl server (TLS, its own CA) on 127.0.0.1 and registers an instance with `deployctl register`;
#   2. starts the AWS agent's master process with those files (the CA trusted through SSL_CERT_FILE);
#   3. deploys a revision with a hook on every event: all seven events must succeed;
#   4. deploys a revision whose ValidateService hook fails: Failed, with the script's log tail in
#      get-deployment-instance.
# Prints what it checked; exits non-zero on the first difference. Stops only the processes it started, by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${AWS_CODEDEPLOY_AGENT_DIR:?set AWS_CODEDEPLOY_AGENT_DIR to a checkout of aws-codedeploy-agent}"
deployctl=${DEPLOYCTL:-$PWD/.build/debug/deployctl}

need=()
for p in ruby ruby-aws-sdk-core ruby-aws-sdk-s3 ruby-logging ruby-zip ruby-concurrent ruby-minitar unzip; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; fi

work=$(mktemp -d "${TMPDIR:-/tmp}/deployctl-aws-agent.XXXXXX")
export DEPLOYCTL_STATE="$work/state.db"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

"$deployctl" create-access-key --user-name ops --role admin >"$work/admin.json"
"$deployctl" server --listen 127.0.0.1:0 >"$work/server.out" 2>"$work/server.log" &
pids+=($!)
for _ in $(seq 50); do grep -q serving "$work/server.out" 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/.*serving \(https[^ ]*\).*/\1/p' "$work/server.out")
echo "server: $url"

"$deployctl" register --instance-name aws-agent-host --tags Key=fleet,Value=aws --endpoint-url "$url" --output-dir "$work/conf" >/dev/null
conf="$work/conf/codedeployagent.yml"
# What `deployctl install --prefix` does for a test host: the agent's directories under the work folder.
sed -i "s#/var/log/aws/codedeploy-agent/#$work/log/#; s#/opt/codedeploy-agent/state/.pid/#$work/pid/#; \
  s#/opt/codedeploy-agent/deployment-root#$work/root#; s#/etc/codedeploy-agent/conf/codedeploy.onpremises.yml#$work/conf/codedeploy.onpremises.yml#" "$conf"
mkdir -p "$work/log" "$work/pid" "$work/root"

env -u AWS_CA_BUNDLE -u AWS_SSL_CA_BUNDLE SSL_CERT_FILE="$work/conf/deployctl-ca.pem" ruby Scripts/aws-agent/run-master.rb "$conf" >"$work/agent.out" 2>&1 &
pids+=($!)
echo "AWS agent: master pid ${pids[-1]}, logs in $work/log"

admin_id=$(python3 -c "import json,sys;print(json.load(open(sys.argv[1]))['AccessKey']['AccessKeyId'])" "$work/admin.json")
admin_secret=$(python3 -c "import json,sys;print(json.load(open(sys.argv[1]))['AccessKey']['SecretAccessKey'])" "$work/admin.json")
remote() { AWS_ACCESS_KEY_ID=$admin_id AWS_SECRET_ACCESS_KEY=$admin_secret AWS_CA_BUNDLE="$work/tls/ca.pem" "$deployctl" "$@" --endpoint-url "$url"; }

# A revision with a hook on every event the agent runs, each recording its event.
app="$work/app"
mkdir -p "$app/scripts" "$app/site"
echo "hello from deployctl" >"$app/site/index.html"
cat >"$app/scripts/record.sh" <<'HOOK'
#!/bin/bash
echo "$LIFECYCLE_EVENT $DEPLOYMENT_ID $APPLICATION_NAME" >>/tmp/deployctl-aws-agent-events.log
echo "ran $LIFECYCLE_EVENT"
HOOK
chmod +x "$app/scripts/record.sh"
{
  echo "version: 0.0"; echo "os: linux"
  echo "files:"; echo "  - source: site"; echo "    destination: $work/installed"
  echo "hooks:"
  for e in ApplicationStop BeforeInstall AfterInstall ApplicationStart ValidateService; do
    echo "  $e:"; echo "    - location: scripts/record.sh"; echo "      timeout: 30"
  done
} >"$app/appspec.yml"
rm -f /tmp/deployctl-aws-agent-events.log

remote create-application --application-name aws-check >/dev/null
remote create-deployment-group --application-name aws-check --deployment-group-name fleet \
  --on-premises-instance-tag-filters Key=fleet,Value=aws,Type=KEY_AND_VALUE >/dev/null
remote push --application-name aws-check --s3-location s3://releases/aws-check-1.zip --source "$app" >/dev/null
started=$(date +%s.%N)
id=$(remote create-deployment --application-name aws-check --deployment-group-name fleet \
  --s3-location bucket=releases,key=aws-check-1.zip,bundleType=zip --output text)
remote wait deployment-successful --deployment-id "$id" --timeout 120 >/dev/null 2>&1 || {
  echo "FAILED: the AWS agent's deployment $id did not succeed"; remote get-deployment-target --deployment-id "$id" --target-id aws-agent-host; exit 1; }
elapsed=$(python3 -c "import time,sys;print(f'{time.time()-float(sys.argv[1]):.1f}')" "$started")
events=$(remote get-deployment-target --deployment-id "$id" --target-id aws-agent-host --output json | python3 -c '
import json,sys
t=json.load(sys.stdin)["deploymentTarget"]["instanceTarget"]
print(" ".join(e["lifecycleEventName"] + "=" + e["status"] for e in t["lifecycleEvents"]))')
echo "deployment $id: Succeeded in ${elapsed}s; events: $events"
for e in ApplicationStop DownloadBundle BeforeInstall Install AfterInstall ApplicationStart ValidateService; do
  echo "$events" | grep -q "$e=Succeeded" || { echo "FAILED: $e did not succeed"; exit 1; }
done
grep -q "hello from deployctl" "$work/installed/index.html" || { echo "FAILED: the file was not installed"; exit 1; }
echo "hooks ran: $(cut -d' ' -f1 /tmp/deployctl-aws-agent-events.log | tr '\n' ' ')"

# A failing ValidateService hook: Failed, with the script's output in the diagnostics.
cat >"$app/scripts/fail.sh" <<'HOOK'
#!/bin/bash
echo "validate: checking service"
echo "validate: service is down" >&2
exit 3
HOOK
chmod +x "$app/scripts/fail.sh"
sed -i '/ValidateService:/{n;s#scripts/record.sh#scripts/fail.sh#}' "$app/appspec.yml"
remote push --application-name aws-check --s3-location s3://releases/aws-check-2.zip --source "$app" >/dev/null
id2=$(remote create-deployment --application-name aws-check --deployment-group-name fleet \
  --s3-location bucket=releases,key=aws-check-2.zip,bundleType=zip --output text)
remote wait deployment-successful --deployment-id "$id2" --timeout 120 >/dev/null 2>&1 && { echo "FAILED: $id2 should have failed"; exit 1; }
status=$(remote get-deployment --deployment-id "$id2" --query 'deploymentInfo.status' --output text 2>/dev/null \
  || remote get-deployment --deployment-id "$id2" --output json | python3 -c 'import json,sys;print(json.load(sys.stdin)["deploymentInfo"]["status"])')
diagnostics=$(remote get-deployment-instance --deployment-id "$id2" --instance-id aws-agent-host --output json | python3 -c '
import json,sys
for e in json.load(sys.stdin)["instanceSummary"]["lifecycleEvents"]:
    if e["lifecycleEventName"]=="ValidateService": print(json.dumps(e.get("diagnostics",{})))')
echo "deployment $id2: $status; ValidateService diagnostics: $diagnostics"
[ "$status" = Failed ] || { echo "FAILED: status $status"; exit 1; }
echo "$diagnostics" | grep -q '"errorCode": "ScriptFailed"' || { echo "FAILED: no ScriptFailed"; exit 1; }
echo "$diagnostics" | grep -q "service is down" || { echo "FAILED: no log tail"; exit 1; }
echo "OK: AWS's agent deployed from deployctl server with the files deployctl register wrote"
