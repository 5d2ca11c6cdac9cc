#!/usr/bin/env bash
# One step of `make ci` (a make target with its variables), timed: its elapsed seconds are
# appended to $CI_TIMES (default reports/ci-times.txt), which .ci/run prints at its end.
set -uo pipefail
start=$(date +%s)
"${MAKE:-make}" --no-print-directory "$@"
rc=$?
printf '%-26s %5d s%s\n' "make $*" "$(($(date +%s) - start))" "$([ $rc -eq 0 ] || echo "  (exit $rc)")" \
  >> "${CI_TIMES:-reports/ci-times.txt}"
exit $rc
