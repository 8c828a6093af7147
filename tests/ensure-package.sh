#!/usr/bin/env bash
# Install a Debian package some tests need (chromium, postgresql) when PROBE finds it missing
# and we may (root, apt-get); otherwise say which tests will be skipped. Never fails.
#   usage: tests/ensure-package.sh PACKAGE 'PROBE COMMAND' 'WHAT NEEDS IT'
set -u
package=$1 probe=$2 needed_by=$3
if eval "$probe" >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's $package for $needed_by..."
  apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null 2>&1 \
    || echo "could not install $package: $needed_by will be skipped"
else
  echo "$package is missing and cannot be installed here (not root): $needed_by will be skipped"
fi
exit 0
