#!/usr/bin/env bash
# Install what building, running and testing this project needs, from
# Debian 12's packages. Safe to run again: it installs only what is missing.
set -euo pipefail

packages=(
	# build
	gcc meson ninja-build pkg-config
	libevent-dev librabbitmq-dev libcurl4-openssl-dev libpq-dev libcjson-dev libsodium-dev libical-dev
	# the real servers the tests and the local stack run
	postgresql rabbitmq-server python3 python3-aiosmtpd
	# tests
	python3-pytest python3-pytest-xdist python3-requests python3-psycopg2 python3-icalendar
	python3-jsonschema python3-yaml python3-nacl
	curl ca-certificates tzdata
	# deployment checks (tests/e2e/test_deploy.py: compose `config` needs no engine) and the browser suite
	docker-compose systemd shellcheck chromium
	# sanitizers and fuzzing
	clang libclang-rt-14-dev
)

# The schema checks and the browser test run on Node.js and npm; a machine that has them from elsewhere keeps them.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	packages+=(nodejs npm)
fi

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done
if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
	sudo="sudo"
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Package scripts must not start system-wide servers on default ports: the
# tests start their own, and a container has no init to run them anyway.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
	$sudo chmod +x "$policy"
	created_policy=1
fi
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
if [ "$created_policy" = 1 ]; then
	$sudo rm -f "$policy"
fi
