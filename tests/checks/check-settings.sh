#!/usr/bin/env bash
# Keeps docs/operations.md true: every setting novacron-server --help lists
# must appear in the configuration table, with its environment variable,
# and the table must not list settings the server no longer has.
set -euo pipefail
server=${1:?server binary}
doc=${2:?docs/operations.md}
help=$("$server" --help)
flags=$(grep -oE '^  --[a-z0-9-]+' <<<"$help" | sed 's/^  //' | grep -vE '^--(help|version)$')
status=0
for f in $flags; do
  env="NOVACRON_$(tr 'a-z-' 'A-Z_' <<<"${f#--}")"
  if ! grep -qE "^\| \`$f\` \| \`$env\` \|" "$doc"; then
    echo "docs/operations.md: no table row for $f ($env)"
    status=1
  fi
done
for f in $(grep -oE '^\| `--[a-z0-9-]+`' "$doc" | grep -oE -- '--[a-z0-9-]+'); do
  grep -qx -- "$f" <<<"$flags" || { echo "docs/operations.md documents $f, which the server does not have"; status=1; }
done
[[ $status -eq 0 ]] && echo "docs/operations.md documents all $(wc -w <<<"$flags") settings"
exit $status
