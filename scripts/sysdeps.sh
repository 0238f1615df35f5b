#!/usr/bin/env bash
# Install the Debian packages gogooku3 needs that this machine lacks.
set -euo pipefail
need=()
command -v java >/dev/null 2>&1 || need+=(openjdk-17-jre-headless)
dpkg -s libgomp1 >/dev/null 2>&1 || need+=(libgomp1)
command -v dot >/dev/null 2>&1 || need+=(graphviz)
# Feast's online store in the embedded default and the serving tests (a real Redis)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
# the DockerOperator test runs the train task in a container through podman's Docker API
command -v podman >/dev/null 2>&1 || need+=(podman)
command -v python3.11 >/dev/null 2>&1 || need+=(python3.11 python3.11-venv)
# the Airflow UI test drives Debian's headless Chromium through Selenium (no browser downloads)
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
if [ ${#need[@]} -eq 0 ]; then
  echo "sysdeps: all present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "sysdeps: installing ${need[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
