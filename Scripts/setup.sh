#!/usr/bin/env bash
# Installs what building and testing deployctl needs on Debian 12 with the Swift toolchain on PATH (haproxy and
# prometheus: the traffic-control and alarm tests start their own, on loopback; the packages' services are not used;
# chromium and chromium-driver: the dashboard's browser tests drive the system's headless Chromium with Selenium;
# libpq-dev builds the PostgreSQL store's loader, postgresql gives the replica tests their own cluster).
# Safe to run again: it only installs what is missing.
set -euo pipefail

packages=(libsqlite3-dev libarchive-dev libyaml-dev libpq-dev postgresql python3 python3-pip acl openssl haproxy prometheus chromium chromium-driver)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! python3 -c 'import botocore, boto3, requests, pytest, selenium' 2>/dev/null || ! command -v aws >/dev/null; then
  echo "setup: installing the aws CLI, boto3, requests, pytest and selenium for the output-shape, server and dashboard tests"
  python3 -m pip install --quiet awscli boto3 requests pytest selenium 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages awscli boto3 requests pytest selenium
fi

command -v swift >/dev/null || { echo "setup: the Swift toolchain (swift) is not on PATH" >&2; exit 1; }
