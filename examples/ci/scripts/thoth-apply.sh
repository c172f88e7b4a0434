#!/usr/bin/env sh
# Applies the reviewed plan on merge, as the apply job runs it.
#
#   thoth-apply.sh PLAN_FILE
#   THOTH_DIR   the configuration directory (default: the current directory)
#
# Applies PLAN_FILE when it is still exactly what the tenant and the state would get. When it
# is missing or no longer valid (the state, the tenant or the configuration moved on since the
# review), plans again: with no change left it succeeds, otherwise it prints the new plan and
# fails, so that the new changes are reviewed before anything is applied.
set -eu

dir="${THOTH_DIR:-.}"
plan="${1:-}"
case "$plan" in ''|/*) ;; *) plan="$PWD/$plan" ;; esac

thoth -chdir="$dir" init -input=false

if [ -n "$plan" ] && [ -f "$plan" ]; then
  if thoth -chdir="$dir" apply -input=false -lock-timeout=10m "$plan"; then
    exit 0
  fi
  echo "The reviewed plan could not be applied; planning again." >&2
else
  echo "No reviewed plan was found; planning again." >&2
fi

set +e
thoth -chdir="$dir" plan -input=false -lock-timeout=10m -detailed-exitcode
code=$?
set -e
case "$code" in
  0)
    echo "Nothing left to apply."
    exit 0
    ;;
  2)
    echo "The tenant needs changes that were not reviewed: open a pull request to review them." >&2
    exit 1
    ;;
  *) exit "$code" ;;
esac
