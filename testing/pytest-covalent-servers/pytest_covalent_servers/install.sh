#!/usr/bin/env bash
# Install the servers the executor plugins are tested against (Debian, as root), without
# starting any of them: each test session starts its own on 127.0.0.1 with its own config.
# Idempotent; does nothing for what is already installed.
set -euo pipefail
want=()
command -v /usr/sbin/sshd >/dev/null || want+=(openssh-server)
command -v slurmctld >/dev/null || want+=(slurm-wlm)
command -v munged >/dev/null || want+=(munge)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || want+=(postgresql)
# A C compiler, for the C leptons the tests build.
command -v gcc >/dev/null || want+=(gcc libc6-dev)
# rsync, for the Rsync file-transfer strategy (locally and over the test sshd).
command -v rsync >/dev/null || want+=(rsync)
# Debian's Chromium, which the UI's tests drive with Playwright (no browser download).
[ -x /usr/bin/chromium ] || want+=(chromium)
if [ "${#want[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "covalent-servers-install: need root to install: ${want[*]}" >&2
    exit 1
  fi
  # Installing a server package must not start it (no init system here anyway).
  [ -e /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; }
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
fi
# sshd as root needs its privilege-separation directory.
mkdir -p -m 0755 /run/sshd
# A non-root user for the tests that log in as one; '*' unlocks key login with UsePAM no.
if ! id covtest >/dev/null 2>&1; then
  useradd -m -s /bin/bash covtest
fi
usermod -p '*' covtest
# The non-root user's own Python with cloudpickle (a remote machine needs nothing more).
have=$(/home/covtest/venv/bin/python -c "import cloudpickle; print(cloudpickle.__version__)" 2>/dev/null || true)
if [ -z "$have" ] || { [ -n "${CLOUDPICKLE_VERSION:-}" ] && [ "$have" != "$CLOUDPICKLE_VERSION" ]; }; then
  [ -x /home/covtest/venv/bin/python ] || runuser -u covtest -- /usr/bin/python3 -m venv /home/covtest/venv
  runuser -u covtest -- /home/covtest/venv/bin/pip install -q "cloudpickle${CLOUDPICKLE_VERSION:+==$CLOUDPICKLE_VERSION}"
fi
