#!/bin/sh
# Installs the Debian packages that tests use as real peers. Idempotent: does
# nothing when every tool is already on PATH.
set -eu

missing=""
command -v sipp >/dev/null 2>&1 || missing="$missing sip-tester"
command -v baresip >/dev/null 2>&1 || missing="$missing baresip-core"
# the DNS tests (tests/integration/net/test_dns_locate.py) ask a real dnsmasq
command -v dnsmasq >/dev/null 2>&1 || [ -x /usr/sbin/dnsmasq ] || missing="$missing dnsmasq-base"
# the browser tests (tests/browser) drive Debian's Chromium through Playwright
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
# a CJK font, so the zh-CN pages render (and their screenshots show) Chinese, not boxes
dpkg -s fonts-wqy-microhei >/dev/null 2>&1 || missing="$missing fonts-wqy-microhei"

[ -z "$missing" ] && exit 0

if [ "$(id -u)" -eq 0 ] && [ -f /etc/debian_version ]; then
    echo "installing Debian packages:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing
else
    echo "warning: missing test tools:$missing (install them, or run make as root on Debian)" >&2
fi
