#!/usr/bin/env bash
# Style gates that need no build: clang-format applied, no banned functions
# (STYLE.md), module layering (../shared/tools/check-layers, when present).
set -euo pipefail
cd "${1:?source dir}"
status=0
mapfile -t files < <(git ls-files '*.c' '*.h' 2>/dev/null || find server sdk include tools tests examples -name '*.[ch]')
if ! clang-format --dry-run -Werror "${files[@]}" 2>/tmp/nc-format.$$; then
  head -20 /tmp/nc-format.$$
  echo "clang-format: run clang-format -i on the files above"
  status=1
fi
rm -f /tmp/nc-format.$$
if grep -nE '\b(strcpy|strcat|sprintf|gets|atoi|strtok)\s*\(' "${files[@]}"; then
  echo "banned functions used (STYLE.md): use the length-checked alternatives"
  status=1
fi
layers=../shared/tools/check-layers
if [[ -x $layers ]]; then
  "$layers" . || status=1
else
  echo "note: $layers not found; layering not checked"
fi
[[ $status -eq 0 ]] && echo "style: ${#files[@]} files formatted, no banned functions"
exit $status
