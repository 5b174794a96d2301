#!/usr/bin/env bash
# Purpose: fills fuzz/corpus/<target> with seeds made from the repository's own files (the example config and the
# webhook fixtures), so the fuzzers start from real inputs. Run from anywhere; the corpus is not committed.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
corpus="$root/fuzz/corpus"
mkdir -p "$corpus/config" "$corpus/command" "$corpus/webhook_event"

cp "$root"/examples/*.yml "$corpus/config/"
printf 'jobs:\n  build:\n    description: &d "x"\n    env: {A: *d, B: *d}\n    steps:\n      - id: s\n        run: echo hi\n' \
  > "$corpus/config/anchors.yml"

printf '/\n/run build\n' > "$corpus/command/run"
printf '/\n/run deploy version=1.4.2 env=production --dry-run\n' > "$corpus/command/params"
printf '!\n> quoted /run x\n```\n!run y\n```\n!retry\n!cancel build\n!help\n' > "$corpus/command/bang"
printf '/\n/approve\n/status\n/rerun failed\n/run greet who="a b"\n' > "$corpus/command/misc"

for dir in "$root"/sim/fixtures/webhooks/*/; do
  event="$(basename "$dir")"
  for file in "$dir"*.json; do
    [ -e "$file" ] || continue
    { printf '%s\n' "$event"; cat "$file"; } > "$corpus/webhook_event/$event-$(basename "$file")"
  done
done
echo "seeded $corpus"
