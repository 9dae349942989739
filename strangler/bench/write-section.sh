#!/usr/bin/env bash
# write-section.sh NAME FILE: replaces the block between <!-- NAME:begin -->
# and <!-- NAME:end --> in FILE with standard input (which carries the
# markers), or appends it when FILE has no such block yet.
set -euo pipefail
name=$1 file=$2
block=$(cat)
if [ -f "$file" ] && grep -q "<!-- $name:begin -->" "$file"; then
  python3 - "$file" "$name" "$block" <<'PY'
import re, sys
path, name, block = sys.argv[1:4]
s = open(path).read()
s = re.sub(r'<!-- %s:begin -->.*<!-- %s:end -->' % (name, name), lambda m: block, s, flags=re.S)
open(path, 'w').write(s)
PY
else
  printf '\n%s\n' "$block" >> "$file"
fi
