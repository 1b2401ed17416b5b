#!/usr/bin/env bash
# Checks systemd/vbs-agent.service with systemd's own tools:
#   1. systemd-analyze verify: the unit parses, every command exists, and
#      nothing is reported, not even a warning.
#      The unit's binary path (/usr/bin/vbs-agent) need not exist here: a
#      copy of the unit with that path pointed at the built binary is
#      verified, with the generated man page on MANPATH for Documentation=.
#   2. systemd-analyze security --offline=true on the unit as shipped:
#      fails when the exposure level is above the bound (default 2.0).
# Usage: systemd/verify.sh [PATH-TO-vbs-agent] [MAX-EXPOSURE]
set -euo pipefail
cd "$(dirname "$0")/.."

unit=systemd/vbs-agent.service
bin=${1:-}
max=${2:-2.0}
if [ -z "$bin" ]; then
  for candidate in target/release/vbs-agent target/debug/vbs-agent; do
    if [ -x "$candidate" ]; then bin=$candidate; break; fi
  done
fi
if [ -z "$bin" ]; then
  cargo build --quiet
  bin=target/debug/vbs-agent
fi
bin=$(realpath "$bin")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/man/man1"
"$bin" man --out "$work/man/man1" 2>/dev/null
sed "s#/usr/bin/vbs-agent#$bin#g" "$unit" > "$work/vbs-agent.service"

echo "== systemd-analyze verify $unit (binary: $bin)"
# Warnings (an unknown directive, say) do not change the exit code: any
# output at all counts as a failure.
if ! out=$(MANPATH="$work/man" systemd-analyze verify "$work/vbs-agent.service" 2>&1) || [ -n "$out" ]; then
  echo "$out" >&2
  echo "systemd-analyze verify is not clean" >&2
  exit 1
fi
echo "clean"

echo "== systemd-analyze security --offline=true $unit"
report=$(systemd-analyze security --offline=true --no-pager "$unit")
echo "$report" | grep -E '^✗' || true
level=$(echo "$report" | sed -n 's/.*Overall exposure level for vbs-agent.service: \([0-9.]*\).*/\1/p')
echo "exposure level: $level (bound: $max)"
if ! awk -v l="$level" -v m="$max" 'BEGIN { exit !(l != "" && l + 0 <= m + 0) }'; then
  echo "exposure level $level is above $max" >&2
  exit 1
fi
