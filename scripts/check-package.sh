#!/usr/bin/env bash
# Checks the package as users get it: `npm pack`, then publint and @arethetypeswrong/cli on the
# tarball, then a scratch project in a temp dir that installs the tarball (plus the SQLite peers the
# README's install step names), type-checks the README's quickstart under strict settings and runs it,
# and runs examples/quickstart.js against the installed package. Needs the dev dependencies installed
# (npm ci) and `dist/` built. Leaves nothing behind in the repository.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

scratch=$(mktemp -d "${TMPDIR:-/tmp}/stockpyle-pack.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

tarball=$(npm pack --silent --pack-destination "$scratch" | tail -n1)
tgz="$scratch/$tarball"
echo "check-package: packed $tarball ($(du -k "$tgz" | cut -f1) KiB, $(tar -tzf "$tgz" | wc -l) files)"

npx --no-install publint run "$tgz" --strict
# ESM only: CommonJS consumers (node10, node16 from CJS) are out of scope by design
npx --no-install attw "$tgz" --profile esm-only --format table-flipped --no-emoji --no-color

# versions the repository itself is tested with, from its lockfile
version() { node -p "require('$repo/package-lock.json').packages['node_modules/$1'].version"; }

app="$scratch/app"
mkdir -p "$app"
cd "$app"
cat >package.json <<'JSON'
{
  "name": "stockpyle-pack-check",
  "private": true,
  "type": "module",
  "allowScripts": { "better-sqlite3": true, "msgpackr-extract": true }
}
JSON
echo "check-package: installing the tarball with better-sqlite3@12 and kysely into a scratch project ..."
log="$scratch/install.log"
if ! npm install --no-audit --no-fund --loglevel=error \
  "$tgz" "better-sqlite3@$(version better-sqlite3)" "kysely@$(version kysely)" \
  "typescript@$(version typescript)" "@types/node@$(version @types/node)" >"$log" 2>&1; then
  cat "$log" >&2
  exit 1
fi

# the README's quickstart, exactly as written (the first ```ts block under "## Quickstart")
awk '/^## Quickstart/{q=1} q&&/^```ts/{f=1;next} f&&/^```/{exit} f' "$repo/README.md" >quickstart.ts
[[ -s quickstart.ts ]] || { echo "check-package: no quickstart found in README.md" >&2; exit 1; }
cat >tsconfig.json <<'JSON'
{
  "compilerOptions": {
    "target": "es2022",
    "module": "nodenext",
    "moduleResolution": "nodenext",
    "strict": true,
    "noUncheckedIndexedAccess": true,
    "exactOptionalPropertyTypes": true,
    "types": ["node"],
    "skipLibCheck": false
  },
  "files": ["quickstart.ts"]
}
JSON
npx --no-install tsc -p tsconfig.json
node quickstart.js
echo "check-package: README quickstart type-checks and runs against the installed tarball"

cp "$repo/examples/quickstart.js" .
node quickstart.js >/dev/null
echo "check-package: examples/quickstart.js runs against the installed tarball"
