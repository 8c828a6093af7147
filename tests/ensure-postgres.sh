#!/usr/bin/env bash
# The PostgreSQL store tests start a throw-away server from Debian's packages; install them
# when they are missing and we may.
set -u
if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's postgresql for the store tests..."
  apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null 2>&1 \
    || echo "could not install postgresql: the PostgreSQL store tests will be skipped"
else
  echo "postgresql is missing and cannot be installed here (not root): its tests will be skipped"
fi
exit 0
