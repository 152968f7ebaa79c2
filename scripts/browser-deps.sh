#!/usr/bin/env bash
# Installs what the monitor's browser test drives when it is missing:
# Debian's chromium and chromium-driver (WebDriver). The test itself
# (client-wrapper/tests/monitor_browser.rs) skips loudly without them;
# CI runs this first so it never skips there.
set -euo pipefail
need() { command -v "$1" >/dev/null 2>&1; }
if need chromium && need chromedriver; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "browser-deps: chromium or chromedriver missing, and not root to install them" >&2
    exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    chromium chromium-driver fonts-dejavu-core >/dev/null
