"""`deployctl migrate`: a state file with every kind of record, copied to PostgreSQL and back, answers every get-,
list- and batch-get- command byte for byte the same; a non-empty target is refused unless --replace."""
import json
import os
import subprocess
import tempfile

from conftest import BINARY, deployctl


def local(store, *args, check=True):
    flag = "--database" if store.startswith("postgres") else "--state"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and not k.startswith("DEPLOYCTL_")}
    return deployctl(*args, flag, store, env=env, check=check)


def make_app(directory):
    os.makedirs(os.path.join(directory, "site"), exist_ok=True)
    open(os.path.join(directory, "site", "index.html"), "w").write("v1\n")
    open(os.path.join(directory, "appspec.yml"), "w").write(
        "version: 0.0\nos: linux\nfiles:\n  - source: site\n    destination: /srv/app\n")


def fill(state, directory):
    """A state file with applications, groups, a custom config, tagged instances, revisions, two finished deployments
    (targets, lifecycle events, the event stream), keys, an alarm, a topic with a subscription and deliveries."""
    local(state, "create-application", "--application-name", "web", "--tags", "Key=team,Value=blue", "Key=cost,Value=7")
    local(state, "create-application", "--application-name", "api")
    local(state, "create-deployment-config", "--deployment-config-name", "Half", "--minimum-healthy-hosts", "type=FLEET_PERCENT,value=50")
    for name in ("web-1", "web-2"):
        local(state, "register-on-premises-instance", "--instance-name", name, "--iam-user-arn", f"arn:aws:iam::123456789012:user/{name}")
    local(state, "add-tags-to-on-premises-instances", "--instance-names", "web-1", "web-2", "--tags", "Key=fleet,Value=web", "Key=zone,Value=a")
    local(state, "put-alarm", "--alarm-name", "errors", "--manual")
    topic = json.loads(local(state, "sns", "create-topic", "--name", "deploys").stdout)["TopicArn"]
    local(state, "sns", "subscribe", "--topic-arn", topic, "--protocol", "http", "--notification-endpoint", "http://127.0.0.1:9/hook")
    local(state, "create-deployment-group", "--application-name", "web", "--deployment-group-name", "fleet",
          "--on-premises-instance-tag-filters", "Key=fleet,Value=web,Type=KEY_AND_VALUE", "--deployment-config-name", "Half",
          "--alarm-configuration", "enabled=true,alarms=[{name=errors}]",
          "--trigger-configurations", f"triggerName=all,triggerTargetArn={topic},triggerEvents=DeploymentSuccess,DeploymentFailure")
    local(state, "create-deployment-group", "--application-name", "api", "--deployment-group-name", "solo",
          "--on-premises-instance-tag-filters", "Key=zone,Value=a,Type=KEY_AND_VALUE")
    app = os.path.join(directory, "app")
    make_app(app)
    local(state, "push", "--application-name", "web", "--s3-location", "s3://releases/web-1.zip", "--source", app)
    local(state, "push", "--application-name", "web", "--s3-location", "s3://releases/web-2.zip", "--source", app,
          "--description", "second")
    deployments = []
    for key in ("web-1.zip", "web-2.zip"):
        deployments.append(local(state, "create-deployment", "--application-name", "web", "--deployment-group-name", "fleet",
                                 "--s3-location", f"bucket=releases,key={key},bundleType=zip", "--output", "text",
                                 "--query", "deploymentId").stdout.strip())
        for name in ("web-1", "web-2"):
            local(state, "agent", "run", "--instance-name", name, "--once", "--install-root", os.path.join(directory, name))
    for role in ("admin", "read-only"):
        local(state, "create-access-key", "--user-name", f"ops-{role}", "--role", role)
    return deployments, topic


def views(store, deployments, topic):
    """What the get-, list- and batch-get- commands print (the keys' secrets are not printed by list-access-keys)."""
    commands = [
        ["list-applications"], ["get-application", "--application-name", "web"],
        ["batch-get-applications", "--application-names", "web", "api"],
        ["list-deployment-groups", "--application-name", "web"],
        ["get-deployment-group", "--application-name", "web", "--deployment-group-name", "fleet"],
        ["batch-get-deployment-groups", "--application-name", "api", "--deployment-group-names", "solo"],
        ["list-deployment-configs"], ["get-deployment-config", "--deployment-config-name", "Half"],
        ["list-on-premises-instances"], ["batch-get-on-premises-instances", "--instance-names", "web-1", "web-2"],
        ["get-on-premises-instance", "--instance-name", "web-2"],
        ["list-application-revisions", "--application-name", "web"],
        ["list-deployments"], ["list-deployments", "--application-name", "web", "--deployment-group-name", "fleet"],
        ["batch-get-deployments", "--deployment-ids", *deployments],
        ["list-access-keys"], ["describe-alarms"], ["events"], ["events", "--deployment-id", deployments[0]],
        ["sns", "list-topics"], ["sns", "list-subscriptions-by-topic", "--topic-arn", topic], ["sns", "list-deliveries"],
    ]
    for deployment in deployments:
        commands += [["get-deployment", "--deployment-id", deployment], ["list-deployment-instances", "--deployment-id", deployment],
                     ["batch-get-deployment-instances", "--deployment-id", deployment, "--instance-ids", "web-1", "web-2"],
                     ["get-deployment-instance", "--deployment-id", deployment, "--instance-id", "web-1"]]
    arn = json.loads(local(store, "get-application", "--application-name", "web").stdout)
    return {" ".join(c): local(store, *c).stdout for c in commands} | {"app": json.dumps(arn)}


def test_a_state_file_copied_to_postgresql_and_back_answers_byte_for_byte_the_same(cluster):
    directory = tempfile.mkdtemp(prefix="deployctl-migrate-")
    try:
        state = os.path.join(directory, "state.db")
        deployments, topic = fill(state, directory)
        before = views(state, deployments, topic)
        assert json.loads(before["events"])["events"], "the event stream has events to copy"
        assert "Succeeded" in before[f"get-deployment --deployment-id {deployments[1]}"]
        assert json.loads(before["sns list-deliveries"])["Deliveries"], "deliveries (with their ids) to copy"

        database = "m_" + os.urandom(6).hex()
        cluster.psql(f"CREATE DATABASE {database}")
        url = cluster.url(database)
        out = deployctl("migrate", "--from", state, "--to", url).stdout
        assert "verified" in out and "deployments" in out, out
        on_postgres = views(url, deployments, topic)
        for command, text in before.items():
            assert on_postgres[command] == text, f"{command} differs on PostgreSQL"

        back = os.path.join(directory, "back.db")
        deployctl("migrate", "--from", url, "--to", back)
        after = views(back, deployments, topic)
        for command, text in before.items():
            assert after[command] == text, f"{command} differs after the round trip"

        # A target that holds anything is refused, and left as it was; --replace copies over it.
        refused = subprocess.run([BINARY, "migrate", "--from", state, "--to", back], capture_output=True, text=True)
        assert refused.returncode != 0 and "--replace" in refused.stderr, refused.stderr
        assert views(back, deployments, topic) == before
        local(state, "create-application", "--application-name", "later")
        deployctl("migrate", "--from", state, "--to", url, "--replace")
        assert "later" in local(url, "list-applications").stdout
        # And a password on the command line is refused before anything is read.
        secret = subprocess.run([BINARY, "migrate", "--from", state, "--to", "postgres://u:hunter2@127.0.0.1:1/db"], capture_output=True,
                                text=True)
        assert secret.returncode == 252 and "hunter2" not in secret.stderr and "PGPASSWORD" in secret.stderr
    finally:
        subprocess.run(["rm", "-rf", directory])
