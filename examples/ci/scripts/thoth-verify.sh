#!/bin/sh
# Runs `thoth verify` in $THOTH_DIR (only the group $ONLY names, when set), writes the
# Markdown report to the job summary (GitHub) or to thoth-verify.md (elsewhere), and exits
# as verify does: 0 when everything passes, 4 when an item fails, 1 on error.
set -eu

dir=${THOTH_DIR:-tenant}
report=${GITHUB_STEP_SUMMARY:-thoth-verify.md}

set -- --chdir "$dir" verify --format markdown
if [ -n "${ONLY:-}" ]; then
  set -- "$@" --only "$ONLY"
fi

status=0
thoth --chdir "$dir" init --input=false >/dev/null || exit 1
thoth "$@" >>"$report" || status=$?
case $status in
  0) echo "thoth verify: every item passes." ;;
  4) echo "thoth verify: an item fails; see the report." >&2 ;;
  *) echo "thoth verify: the checklist could not be run (exit $status)." >&2 ;;
esac
exit "$status"
