#!/usr/bin/env bash
# The browser test drives Debian's Chromium; install it when it is missing and we may.
set -u
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's chromium for the browser test..."
  apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1 \
    || echo "could not install chromium: the browser test will be skipped"
else
  echo "chromium is missing and cannot be installed here (not root): the browser test will be skipped"
fi
exit 0
