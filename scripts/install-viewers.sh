#!/usr/bin/env bash
# Installs what `queueprof view-check` opens artifacts with, idempotently:
#   - Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver),
#     through apt-get, as root: nothing downloads a browser build of its own;
#   - npm's speedscope (the app, not a CLI download) into DIR/node_modules/speedscope.
# Usage: scripts/install-viewers.sh DIR     (tox -e viewers passes .tox/viewers/viewers)
# Its last line names the speedscope release folder to pass as --speedscope-app.
set -euo pipefail

SPEEDSCOPE_VERSION="1.25.0"
dir="${1:?usage: scripts/install-viewers.sh DIR (where npm installs speedscope)}"

fail() {
    echo "install-viewers: $*" >&2
    exit 2
}

apt_install() {
    # $@: Debian packages. Only root with apt-get can install them.
    if [ "$(id -u)" -ne 0 ]; then
        fail "need Debian packages $* but not running as root; run as root, or install them" \
            "yourself (sudo apt-get install -y $*) and run this again"
    fi
    command -v apt-get >/dev/null || fail "need Debian packages $* but apt-get is missing;" \
        "install chromium, its chromedriver of the same version and npm by other means"
    echo "install-viewers: apt-get install $*"
    apt-get update -qq || fail "apt-get update failed (is the Debian mirror reachable?)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" \
        >/dev/null || fail "apt-get install $* failed (see its messages above)"
}

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
command -v npm >/dev/null || missing+=(npm)
if [ "${#missing[@]}" -gt 0 ]; then
    apt_install "${missing[@]}"
fi
echo "install-viewers: $(/usr/bin/chromium --version 2>/dev/null), $(/usr/bin/chromedriver --version | cut -d' ' -f1-2)"

app="$dir/node_modules/speedscope/dist/release"
installed="$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$dir/node_modules/speedscope/package.json" 2>/dev/null || true)"
if [ "$installed" != "$SPEEDSCOPE_VERSION" ] || [ ! -f "$app/index.html" ]; then
    mkdir -p "$dir"
    echo "install-viewers: npm install speedscope@$SPEEDSCOPE_VERSION into $dir"
    npm install --prefix "$dir" --no-audit --no-fund --loglevel=error \
        "speedscope@$SPEEDSCOPE_VERSION" >/dev/null || fail "npm install speedscope failed"
fi
[ -f "$app/index.html" ] || fail "speedscope $SPEEDSCOPE_VERSION has no $app/index.html"
echo "install-viewers: speedscope $SPEEDSCOPE_VERSION app in $app"
