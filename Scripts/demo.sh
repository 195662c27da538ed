#!/usr/bin/env bash
# The README demo: an application, three tagged on-premises instances, a deployment group that selects two
# of them, and a deployment, all in a throw-away state file. Prints every command before running it.
set -euo pipefail
cd "$(dirname "$0")/.."
deployctl=${DEPLOYCTL:-.build/debug/deployctl}
demo_dir=$(mktemp -d "${TMPDIR:-/tmp}/deployctl-demo.XXXXXX")
export DEPLOYCTL_STATE="$demo_dir/state.db"

run() { printf '\n$ deployctl %s\n' "$*"; "$deployctl" "$@"; }

run create-application --application-name web-shop
for host in web-1 web-2 web-3; do
  run register-on-premises-instance --instance-name "$host"
done
run add-tags-to-on-premises-instances --instance-names web-1 web-2 --tags Key=env,Value=prod
run add-tags-to-on-premises-instances --instance-names web-3 --tags Key=env,Value=staging
run create-deployment-group --application-name web-shop --deployment-group-name prod \
  --on-premises-instance-tag-filters Key=env,Value=prod,Type=KEY_AND_VALUE \
  --deployment-config-name CodeDeployDefault.HalfAtATime
id=$("$deployctl" create-deployment --application-name web-shop --deployment-group-name prod \
  --s3-location bucket=releases,key=web-shop-1.0.zip,bundleType=zip --description "first release" \
  --output text)
printf '\n$ deployctl create-deployment ... --output text\n%s\n' "$id"
run get-deployment --deployment-id "$id"
run list-deployment-targets --deployment-id "$id"
run get-deployment-target --deployment-id "$id" --target-id web-1 --output table
printf '\nState file: %s (remove it with: rm -r %s)\n' "$DEPLOYCTL_STATE" "$demo_dir"

# A revision: validate the sample static site, push it into the artifact store, and deploy what push registered.
run validate --source Fixtures/apps/static-site
push_out=$("$deployctl" push --application-name web-shop --s3-location s3://releases/static-site-1.0.zip --source Fixtures/apps/static-site)
printf '\n$ deployctl push --application-name web-shop --s3-location s3://releases/static-site-1.0.zip --source Fixtures/apps/static-site\n%s\n' "$push_out"
location=$(printf '%s\n' "$push_out" | sed -n 's/.*--s3-location \([^ ]*\).*/\1/p')

# Deploy it for real: one agent per instance (each with its own agent root and install root, as separate hosts
# would have), the first deployment stopped to free the group, and create-deployment --wait showing the live view.
run stop-deployment --deployment-id "$id"
agents=()
for host in web-1 web-2 web-3; do
  "$deployctl" agent run --instance-name "$host" --agent-root "$demo_dir/$host/agent-root" \
    --install-root "$demo_dir/$host/host" --poll-interval 0.2 2>>"$demo_dir/agents.log" &
  agents+=($!)
done
trap 'kill "${agents[@]}" 2>/dev/null; wait 2>/dev/null' EXIT
run create-deployment --application-name web-shop --deployment-group-name prod --s3-location "$location" --wait --timeout 120
for host in web-1 web-2 web-3; do
  if [ -f "$demo_dir/$host/host/var/www/static-site/index.html" ]; then echo "$host: static-site installed"; else echo "$host: not in the group (tagged staging)"; fi
done

# And the same sample deployed on this host, into a sandbox instead of /var/www.
run local --bundle-location Fixtures/apps/static-site --agent-root "$demo_dir/agent-root" --install-root "$demo_dir/host"
