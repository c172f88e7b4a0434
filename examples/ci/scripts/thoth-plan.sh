#!/usr/bin/env sh
# Plans the tenant configuration for review, as the pull-request job runs it.
#
#   THOTH_DIR   the configuration directory (default: the current directory)
#   THOTH_OUT   where the results go (default: ./thoth-out)
#
# Writes $THOTH_OUT/tenant.plan (the saved plan, no secret inside) and $THOTH_OUT/plan.md (the
# pull-request comment; its first line is a hidden marker naming the directory, tenant and
# workspace, by which the comment is found and updated). Prints `changes=true|false`, and
# appends it to $GITHUB_OUTPUT when that is set. Exits 0 with or without changes, 1 on error.
set -eu

dir="${THOTH_DIR:-.}"
out="${THOTH_OUT:-$PWD/thoth-out}"
mkdir -p "$out"
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac

thoth -chdir="$dir" init -input=false

set +e
thoth -chdir="$dir" plan -input=false -lock-timeout=5m -detailed-exitcode \
  -out="$out/tenant.plan" --format markdown >"$out/plan.md"
code=$?
set -e

case "$code" in
  0) changes=false ;;
  2) changes=true ;;
  *) exit "$code" ;;
esac
echo "changes=$changes"
if [ -n "${GITHUB_OUTPUT:-}" ]; then
  echo "changes=$changes" >>"$GITHUB_OUTPUT"
fi
