"""deployctl as a remote client: push and deploy through `deployctl server` with an agent on the server's host,
output byte-identical to local mode, and the AWS credential chain (environment, profiles) and trust settings."""
import json
import os
import signal
import subprocess

from conftest import BINARY, ROOT, deployctl

SITE = os.path.join(ROOT, "Fixtures", "apps", "static-site")


def remote(server, *args, role="admin", env=None):
    return deployctl(*args, "--endpoint-url", server.url, env=env or server.env(role), check=False)


def test_push_and_deploy_through_the_server_with_a_local_agent(server):
    s = server
    for args in (("create-application", "--application-name", "web"),
                 ("register-on-premises-instance", "--instance-name", "h1", "--iam-user-arn", "arn:aws:iam::000000000000:user/h1"),
                 ("add-tags-to-on-premises-instances", "--instance-names", "h1", "--tags", "Key=env,Value=prod"),
                 ("create-deployment-group", "--application-name", "web", "--deployment-group-name", "prod",
                  "--on-premises-instance-tag-filters", "Key=env,Value=prod,Type=KEY_AND_VALUE")):
        result = remote(s, *args)
        assert result.returncode == 0, (args, result.stderr)
    # A deployer key pushes (S3 upload + RegisterApplicationRevision) and deploys.
    pushed = remote(s, "push", "--application-name", "web", "--s3-location", "s3://releases/site.zip", "--source", SITE, role="deployer")
    assert pushed.returncode == 0, pushed.stderr
    assert "--s3-location bucket=releases,key=site.zip,bundleType=zip,eTag=" in pushed.stdout
    agent_log = open(os.path.join(s.directory, "agent.log"), "w")
    agent = subprocess.Popen([BINARY, "agent", "run", "--state", s.state, "--instance-name", "h1",
                              "--agent-root", os.path.join(s.directory, "agent"), "--install-root", os.path.join(s.directory, "host"),
                              "--poll-interval", "0.2"], stderr=agent_log)
    try:
        deployed = remote(s, "create-deployment", "--application-name", "web", "--deployment-group-name", "prod",
                          "--s3-location", "bucket=releases,key=site.zip,bundleType=zip", "--wait", "--timeout", "120",
                          role="deployer")
        assert deployed.returncode == 0, deployed.stderr
        deployment_id = json.loads(deployed.stdout)["deploymentId"]
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=60)
        agent_log.close()
    assert os.path.isfile(os.path.join(s.directory, "host", "var", "www", "static-site", "index.html"))
    # The same state read locally and through the server prints the same bytes.
    for args in (("get-deployment", "--deployment-id", deployment_id),
                 ("list-deployment-targets", "--deployment-id", deployment_id),
                 ("get-deployment-target", "--deployment-id", deployment_id, "--target-id", "h1"),
                 ("list-application-revisions", "--application-name", "web"),
                 ("get-deployment-group", "--application-name", "web", "--deployment-group-name", "prod"),
                 ("list-deployments", "--output", "text"),
                 ("get-application", "--application-name", "web", "--output", "table")):
        local = deployctl(*args, "--state", s.state, check=False)
        over_https = remote(s, *args, role="read-only")
        assert over_https.returncode == local.returncode == 0, (args, over_https.stderr, local.stderr)
        assert over_https.stdout == local.stdout, args
    # Errors too: same line, same exit code (254).
    local = deployctl("get-application", "--application-name", "nope", "--state", s.state, check=False)
    over_https = remote(s, "get-application", "--application-name", "nope")
    assert (over_https.returncode, over_https.stderr) == (local.returncode, local.stderr) and local.returncode == 254


def test_endpoint_and_credentials_come_from_the_aws_chain(server, tmp_path):
    s = server
    key = s.keys["read-only"]
    base = {k: v for k, v in s.env().items() if not k.startswith("AWS_")}
    credentials = tmp_path / "credentials"
    credentials.write_text(f"[default]\naws_access_key_id = nobody\naws_secret_access_key = nothing-here-000\n\n"
                           f"[ci]\naws_access_key_id = {key['AccessKeyId']}\naws_secret_access_key = {key['SecretAccessKey']}\n")
    config = tmp_path / "config"
    config.write_text(f"[profile ci]\nregion = eu-west-1\nca_bundle = {s.ca}\n")
    env = dict(base, AWS_SHARED_CREDENTIALS_FILE=str(credentials), AWS_CONFIG_FILE=str(config), DEPLOYCTL_ENDPOINT_URL=s.url)
    # --profile: keys and the CA bundle from the profile.
    ok = deployctl("list-applications", "--profile", "ci", env=env, check=False)
    assert ok.returncode == 0, ok.stderr
    # AWS_PROFILE does the same; AWS_ENDPOINT_URL_CODEDEPLOY is read when DEPLOYCTL_ENDPOINT_URL is not set.
    env2 = dict(base, AWS_SHARED_CREDENTIALS_FILE=str(credentials), AWS_CONFIG_FILE=str(config), AWS_PROFILE="ci",
                AWS_ENDPOINT_URL_CODEDEPLOY=s.url)
    assert deployctl("list-applications", env=env2, check=False).returncode == 0
    # The default profile's key is unknown to the server.
    refused = deployctl("list-applications", "--ca-bundle", s.ca, env=dict(env, AWS_CONFIG_FILE="/dev/null"), check=False)
    assert refused.returncode == 254 and "(UnrecognizedClientException)" in refused.stderr
    missing = deployctl("list-applications", "--profile", "nosuch", env=env, check=False)
    assert missing.returncode == 255 and "The config profile (nosuch) could not be found" in missing.stderr
    none = deployctl("list-applications", env=dict(base, DEPLOYCTL_ENDPOINT_URL=s.url, AWS_SHARED_CREDENTIALS_FILE="/dev/null",
                                                    AWS_CONFIG_FILE="/dev/null"), check=False)
    assert none.returncode == 255 and "Unable to locate credentials" in none.stderr


def test_trust_settings_and_unreachable_endpoints_are_clear(server):
    s = server
    untrusted = deployctl("list-applications", "--endpoint-url", s.url, env=s.env(AWS_CA_BUNDLE=""), check=False)
    assert untrusted.returncode == 255 and "SSL validation failed" in untrusted.stderr and "--ca-bundle" in untrusted.stderr
    insecure = deployctl("list-applications", "--endpoint-url", s.url, "--no-verify-ssl", env=s.env(AWS_CA_BUNDLE=""), check=False)
    assert insecure.returncode == 0, insecure.stderr
    closed = deployctl("list-applications", "--endpoint-url", "https://127.0.0.1:1", env=s.env(), check=False)
    assert closed.returncode == 255 and "Could not connect to the endpoint URL" in closed.stderr
    bad = deployctl("list-applications", "--endpoint-url", "ftp://example", env=s.env(), check=False)
    assert bad.returncode == 252 and "Invalid endpoint" in bad.stderr
    local_only = deployctl("create-access-key", "--user-name", "x", "--endpoint-url", s.url, env=s.env(), check=False)
    assert local_only.returncode == 252 and "--endpoint-url is not accepted" in local_only.stderr
