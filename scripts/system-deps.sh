#!/usr/bin/env bash
# Install the Debian packages the plugins' tests need (each plugin lists its own in
# scripts/system-deps.d/<plugin>.sh). Idempotent and quick when everything is present.
set -euo pipefail
cd "$(dirname "$0")"
missing=()
for f in system-deps.d/*.list; do
  [ -f "$f" ] || continue
  while read -r pkg; do
    pkg=${pkg%%#*}; pkg=$(echo "$pkg" | xargs)
    [ -n "$pkg" ] || continue
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done < "$f"
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing Debian packages (install them as root): ${missing[*]}" >&2
    exit 0
  fi
  echo "installing Debian packages: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
for f in system-deps.d/*.sh; do
  [ -f "$f" ] && bash "$f"
done
exit 0
