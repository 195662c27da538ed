"""The dashboard (issue 27) in a real headless Chromium (Debian's chromium and chromium-driver, driven by Selenium)
against a real `deployctl server` over TLS with a real agent: sign-in, the pages, a running deployment's grid
updating without a reload, stop with rollback and redeploy, a read-only key's refusals, the CSRF check, and a hook's
`<script>` shown as text. Each page is photographed at desktop and phone width into docs/dashboard/.
"""
import http.client
import http.server
import importlib.util
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import tempfile
import threading
import time

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

_here = os.path.dirname(os.path.abspath(__file__))
_support_spec = importlib.util.spec_from_file_location("e2e_support", os.path.join(os.path.dirname(_here), "e2e_support.py"))
_support = importlib.util.module_from_spec(_support_spec)
_support_spec.loader.exec_module(_support)
_server = _support.server_conftest()
BINARY, Server, deployctl = _server.BINARY, _server.Server, _server.deployctl

SHOTS = os.path.join(os.path.dirname(os.path.dirname(_here)), "docs", "dashboard")
CHROMEDRIVER = "/usr/bin/chromedriver"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


class Health(http.server.BaseHTTPRequestHandler):
    """What HAProxy's checks of the green instance reach: the test's own stand-in for its service."""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


class HAProxy:
    """HAProxy with one backend, `web`, whose one server (green-1, in maintenance at first) is checked every 100 ms."""

    def __init__(self, directory, port):
        self.socket = os.path.join(directory, "admin.sock")
        config = os.path.join(directory, "haproxy.cfg")
        open(config, "w").write(f"""global
  stats socket {self.socket} mode 600 level admin
defaults
  mode http
  timeout connect 100ms
  timeout client 10s
  timeout server 10s
backend web
  option httpchk GET /health
  default-server check inter 100ms rise 2 fall 2
  server green-1 127.0.0.1:{port} disabled
""")
        self.log = open(os.path.join(directory, "haproxy.log"), "w")
        self.process = subprocess.Popen([HAPROXY, "-db", "-f", config], stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 10
        while not os.path.exists(self.socket):
            assert self.process.poll() is None and time.monotonic() < deadline, "haproxy did not start"
            time.sleep(0.05)

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=10)
        self.log.close()


def revision(folder, validate):
    os.makedirs(folder + "/site", exist_ok=True)
    open(folder + "/site/index.html", "w").write(os.path.basename(folder) + "\n")
    open(folder + "/validate.sh", "w").write("#!/bin/sh\n" + validate + "\n")
    os.chmod(folder + "/validate.sh", 0o755)
    open(folder + "/appspec.yml", "w").write(
        "version: 0.0\nos: linux\nfiles:\n  - source: site\n    destination: /srv/site\n"
        "hooks:\n  ValidateService:\n    - location: validate.sh\n      timeout: 120\n")


@pytest.fixture(scope="module")
def setup():
    if not os.access(CHROMEDRIVER, os.X_OK):
        pytest.fail("chromium-driver is not installed (apt-get install chromium chromium-driver python3-selenium; .ci/run does it)")
    directory = tempfile.mkdtemp(prefix="deployctl-dashboard-")
    server = browser = haproxy = health = None
    agents = []
    try:
        health = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
        threading.Thread(target=health.serve_forever, daemon=True).start()
        haproxy = HAProxy(directory, health.server_address[1])
        server = Server(extra_args=("--poll-hold", "5", "--load-balancer", f"web=unix:{haproxy.socket}", "--traffic-health-timeout", "30"))
        for name, tags in (("web-1", "Key=app,Value=web"), ("green-1", "Key=color,Value=green")):
            agents.append(_support.start_agent(server, name, tags, os.path.join(directory, name)))
        remote(server, "create-application", "--application-name", "web")
        remote(server, "create-deployment-group", "--application-name", "web", "--deployment-group-name", "prod",
               "--on-premises-instance-tag-filters", "Key=app,Value=web,Type=KEY_AND_VALUE",
               "--auto-rollback-configuration", "enabled=true,events=DEPLOYMENT_FAILURE")
        for name, validate in (("good", "sleep 4"), ("slow", "sleep 60"),
                               ("evil", "echo '<script>window.pwned=1</script><img src=x onerror=window.pwned=2>'; exit 1")):
            folder = os.path.join(directory, name)
            revision(folder, validate)
            remote(server, "push", "--application-name", "web", "--s3-location", f"s3://releases/{name}.zip", "--source", folder)
        options = webdriver.ChromeOptions()
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900"):
            options.add_argument(flag)
        options.accept_insecure_certs = True
        options.binary_location = "/usr/bin/chromium"
        browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        browser.set_page_load_timeout(30)
        os.makedirs(SHOTS, exist_ok=True)
        yield server, browser
    finally:
        if browser:
            browser.quit()
        for agent, log in agents:
            agent.send_signal(signal.SIGTERM)
            agent.wait(timeout=90)
            log.close()
        if server:
            server.stop()
            subprocess.run(["rm", "-rf", server.directory])
        if haproxy:
            haproxy.stop()
        if health:
            health.shutdown()
            health.server_close()
        subprocess.run(["rm", "-rf", directory])


remote, info, until = _support.remote, _support.deployment_info, _support.until


def deploy(server, name):
    return remote(server, "create-deployment", "--application-name", "web", "--deployment-group-name", "prod",
                  "--s3-location", f"bucket=releases,key={name}.zip,bundleType=zip", "--output", "text").stdout.strip()


def sign_in(server, browser, role="admin"):
    browser.delete_all_cookies()
    browser.get(server.url + "/ui/")
    key = server.keys[role]
    field = browser.find_element(By.XPATH, "//label[text()='Access key ID']")
    browser.find_element(By.ID, field.get_attribute("for")).send_keys(key["AccessKeyId"])
    field = browser.find_element(By.XPATH, "//label[text()='Secret access key']")
    browser.find_element(By.ID, field.get_attribute("for")).send_keys(key["SecretAccessKey"])
    browser.find_element(By.CSS_SELECTOR, "form.signin button").click()
    WebDriverWait(browser, 10).until(lambda b: b.current_url.endswith("/ui/deployments"))


def heading(browser, text, seconds=10):
    """Waits for the page whose h1 contains `text` (a click's navigation may still be under way)."""
    WebDriverWait(browser, seconds).until(lambda b: text in b.execute_script(
        "return Array.from(document.querySelectorAll('h1'), h => h.textContent).join('\\n')"))


def attribute(browser, selector, name):
    """The attribute of the element `selector` finds, read in one step inside the page ("" when there is none): the
    live view replaces the grid as the deployment moves, so an element found in one call may be gone by the next."""
    return browser.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? (e.getAttribute(arguments[1]) || '') : ''", selector, name)


def shoot(browser, name):
    for label, width, height in (("desktop", 1280, 900), ("phone", 375, 812)):
        browser.set_window_size(width, height)
        time.sleep(0.2)
        # No line of the page may need sideways scrolling but the tables' own boxes.
        overflow = browser.execute_script("return document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 1, f"{name} at {width} px overflows by {overflow} px"
        browser.save_screenshot(os.path.join(SHOTS, f"{name}-{label}.png"))
    browser.set_window_size(1280, 900)


def post_from_page(browser, path, fields):
    """Posts a form from the page's own script (same origin, the session cookie sent): what a forged form would do."""
    return browser.execute_async_script("""
        const [path, fields, done] = arguments;
        fetch(path, {method: 'POST', body: new URLSearchParams(fields), credentials: 'same-origin', redirect: 'manual'})
            .then(r => r.text().then(t => done([r.status, t]))).catch(e => done([0, String(e)]));""", path, fields)


def test_sign_in_and_the_four_pages(setup):
    server, browser = setup
    browser.delete_all_cookies()
    browser.get(server.url + "/ui/deployments")
    assert browser.current_url.endswith("/ui/signin")
    assert browser.find_element(By.XPATH, "//label[text()='Access key ID']") and browser.find_element(By.XPATH, "//label[text()='Secret access key']")
    shoot(browser, "signin")
    # A wrong secret is refused, saying so, and no secret appears in the URL.
    browser.find_element(By.ID, "key").send_keys(server.keys["admin"]["AccessKeyId"])
    browser.find_element(By.ID, "secret").send_keys("wrong")
    browser.find_element(By.CSS_SELECTOR, "form.signin button").click()
    WebDriverWait(browser, 10).until(lambda b: "do not match an active key" in b.page_source)
    assert "wrong" not in browser.current_url
    sign_in(server, browser)
    cookie = browser.get_cookie("deployctl_session")
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict", cookie

    first = deploy(server, "good")
    assert until(server, first)["status"] == "Succeeded"
    browser.get(server.url + "/ui/deployments")
    row = browser.find_element(By.XPATH, f"//a[text()='{first}']/ancestor::tr")
    assert "Succeeded" in row.text and "web / prod" in row.text and "s3://releases/good.zip" in row.text and "user" in row.text
    shoot(browser, "deployments")
    browser.find_element(By.LINK_TEXT, first).click()
    heading(browser, f"Deployment {first}")
    cell = browser.find_element(By.CSS_SELECTOR, "td[data-instance='web-1'][data-event='ValidateService']")
    assert cell.text.startswith("Succeeded") and "c-succeeded" in cell.get_attribute("class")
    shoot(browser, "deployment")
    browser.find_element(By.LINK_TEXT, "Applications").click()
    heading(browser, "Applications")
    assert "prod" in browser.page_source and "s3://releases/good.zip" in browser.page_source
    shoot(browser, "applications")
    browser.find_element(By.LINK_TEXT, "prod").click()
    heading(browser, "web / prod")
    assert "Matching instances" in browser.page_source and "DEPLOYMENT_FAILURE" in browser.page_source
    shoot(browser, "group")
    browser.find_element(By.LINK_TEXT, "Instances").click()
    heading(browser, "Instances")
    row = browser.find_element(By.XPATH, "//a[text()='web-1']/ancestor::tr")
    assert "app=web" in row.text and re.search(r"Online|Running", row.text), row.text
    shoot(browser, "instances")
    browser.find_element(By.LINK_TEXT, "web-1").click()
    heading(browser, "Instance web-1")
    assert first in browser.page_source
    # Keyboard: the navigation is reachable with Tab.
    browser.find_element(By.TAG_NAME, "body").send_keys("\t")
    assert browser.switch_to.active_element.tag_name == "a"


def test_a_running_deployment_updates_without_a_reload(setup):
    server, browser = setup
    sign_in(server, browser)
    deployment = deploy(server, "good")
    browser.get(server.url + f"/ui/deployments/{deployment}")
    browser.execute_script("window.__sameDocument = 'yes'")
    WebDriverWait(browser, 10).until(lambda b: attribute(b, "#live", "data-following") == "yes")
    selector = "td[data-instance='web-1'][data-event='ValidateService']"
    WebDriverWait(browser, 60).until(lambda b: "c-succeeded" in attribute(b, selector, "class"))
    assert browser.execute_script("return window.__sameDocument") == "yes", "the page reloaded"
    WebDriverWait(browser, 10).until(lambda b: "Status: Succeeded" in b.execute_script("return document.getElementById('live').innerText"))


def test_stop_with_rollback_and_redeploy(setup):
    server, browser = setup
    sign_in(server, browser)
    slow = deploy(server, "slow")
    until(server, slow, statuses=("InProgress",), seconds=30)
    browser.get(server.url + f"/ui/deployments/{slow}")
    browser.find_element(By.LINK_TEXT, "Stop…").click()
    heading(browser, "Stop deployment")
    browser.find_element(By.NAME, "rollback").click()
    browser.find_element(By.XPATH, "//button[text()='Stop the deployment']").click()
    WebDriverWait(browser, 20).until(lambda b: "Rollback of" in b.page_source)
    rollback = re.search(r"/ui/deployments/(d-[A-Z0-9]+)$", browser.current_url).group(1)
    assert rollback != slow and info(server, slow)["status"] == "Stopped"
    assert until(server, rollback)["status"] == "Succeeded"
    browser.get(server.url + f"/ui/deployments/{slow}")
    browser.find_element(By.LINK_TEXT, "Redeploy this revision…").click()
    heading(browser, "again?")
    browser.find_element(By.XPATH, "//button[text()='Deploy']").click()
    WebDriverWait(browser, 20).until(lambda b: re.search(r"/ui/deployments/(d-[A-Z0-9]+)$", b.current_url)
                                     and not b.current_url.endswith(slow))
    again = re.search(r"/ui/deployments/(d-[A-Z0-9]+)$", browser.current_url).group(1)
    detail = info(server, again)
    assert detail["revision"]["s3Location"]["key"] == "slow.zip" and "dashboard" in detail["description"]
    remote(server, "stop-deployment", "--deployment-id", again)
    until(server, again)


def test_a_read_only_key_sees_no_actions_and_is_refused_and_forms_need_the_csrf_token(setup):
    server, browser = setup
    done = until(server, json.loads(remote(server, "list-deployments").stdout)["deployments"][0])
    deployment = done["deploymentId"]
    sign_in(server, browser, role="read-only")
    browser.get(server.url + f"/ui/deployments/{deployment}")
    assert not browser.find_elements(By.CSS_SELECTOR, "p.actions a")
    browser.get(server.url + f"/ui/deployments/{deployment}/redeploy")
    heading(browser, "Not found")
    browser.get(server.url + "/ui/deployments")
    token = browser.find_element(By.CSS_SELECTOR, "form.signout input[name=csrf]").get_attribute("value")
    status, text = post_from_page(browser, f"/ui/deployments/{deployment}/redeploy", {"csrf": token})
    assert status == 403 and "may not call CreateDeployment" in text, (status, text)
    # An admin's form without the session's token, or with another one, is refused and changes nothing.
    sign_in(server, browser)
    before = len(json.loads(remote(server, "list-deployments").stdout)["deployments"])
    for fields in ({}, {"csrf": "0" * 64}):
        status, text = post_from_page(browser, f"/ui/deployments/{deployment}/redeploy", fields)
        assert status == 403 and "CSRF" in text, (status, text)
    # A form with the right cookie and token but sent from another site (its Origin) is refused too.
    token = browser.find_element(By.CSS_SELECTOR, "form.signout input[name=csrf]").get_attribute("value")
    cookie = browser.get_cookie("deployctl_session")["value"]
    connection = http.client.HTTPSConnection("127.0.0.1", server.port, context=ssl.create_default_context(cafile=server.ca))
    connection.request("POST", f"/ui/deployments/{deployment}/redeploy", body=f"csrf={token}", headers={
        "Content-Type": "application/x-www-form-urlencoded", "Cookie": f"deployctl_session={cookie}", "Origin": "https://evil.example"})
    answer = connection.getresponse()
    assert answer.status == 403 and b"another site" in answer.read()
    assert len(json.loads(remote(server, "list-deployments").stdout)["deployments"]) == before
    # Sign-out ends the session.
    browser.find_element(By.XPATH, "//button[text()='Sign out']").click()
    heading(browser, "Sign in")
    browser.get(server.url + "/ui/deployments")
    assert browser.current_url.endswith("/ui/signin")


def test_a_hooks_script_tag_is_shown_as_text(setup):
    server, browser = setup
    sign_in(server, browser)
    evil = deploy(server, "evil")
    failed = until(server, evil)
    assert failed["status"] == "Failed"
    browser.get(server.url + f"/ui/deployments/{evil}")
    log = browser.find_element(By.CSS_SELECTOR, "pre.log").text
    assert "<script>window.pwned=1</script>" in log and "<img src=x onerror=window.pwned=2>" in log
    assert browser.execute_script("return typeof window.pwned") == "undefined"
    assert not browser.find_elements(By.CSS_SELECTOR, "main script, main img")
    rollback = failed.get("rollbackInfo", {}).get("rollbackDeploymentId")
    if rollback:
        until(server, rollback)


def test_continue_a_blue_green_deployment_waiting_in_ready(setup):
    server, browser = setup
    remote(server, "create-deployment-group", "--application-name", "web", "--deployment-group-name", "bg",
           "--on-premises-instance-tag-filters", "Key=color,Value=blue,Type=KEY_AND_VALUE",
           "--deployment-style", "deploymentType=BLUE_GREEN,deploymentOption=WITH_TRAFFIC_CONTROL",
           "--load-balancer-info", "targetGroupInfoList=[{name=web}]",
           "--blue-green-deployment-configuration", json.dumps({
               "deploymentReadyOption": {"actionOnTimeout": "STOP_DEPLOYMENT", "waitTimeInMinutes": 60},
               "terminateBlueInstancesOnDeploymentSuccess": {"action": "KEEP_ALIVE"},
               "greenFleetProvisioningOption": {"action": "DISCOVER_EXISTING"}}))
    deployment = remote(server, "create-deployment", "--application-name", "web", "--deployment-group-name", "bg",
                        "--s3-location", "bucket=releases,key=good.zip,bundleType=zip",
                        "--target-instances", json.dumps({"tagFilters": [{"Key": "color", "Value": "green", "Type": "KEY_AND_VALUE"}]}),
                        "--output", "text").stdout.strip()
    assert until(server, deployment, statuses=("Ready", "Failed", "Stopped"), seconds=60)["status"] == "Ready"
    sign_in(server, browser)
    browser.get(server.url + f"/ui/deployments/{deployment}")
    assert "Green" in browser.execute_script("return document.querySelector('table.grid').innerText")
    browser.find_element(By.PARTIAL_LINK_TEXT, "Continue").click()
    heading(browser, "Continue deployment")
    browser.find_element(By.XPATH, "//button[text()='Continue']").click()
    WebDriverWait(browser, 20).until(lambda b: b.current_url.endswith(f"/ui/deployments/{deployment}"))
    finished = until(server, deployment, seconds=60)
    assert finished["status"] == "Succeeded", finished
    # The grid shows the traffic step that ran once the deployment was continued.
    WebDriverWait(browser, 20).until(lambda b: "c-succeeded" in attribute(b, "td[data-instance='green-1'][data-event='AllowTraffic']", "class"))
