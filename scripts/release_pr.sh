#!/usr/bin/env bash
# CI on branch dev: push it to release/dev-to-main and open (or update) the pull request
# to main, with the metrics tables of the models CI just trained (reports/metrics-*.md from
# the train jobs' artifacts, downloaded to models-artifacts/) as its body. Needs gh.
set -euo pipefail
cd "$(dirname "$0")/.."
branch=release/dev-to-main
tables=$(find models-artifacts -name 'metrics-*.md' | sort)
[ -n "$tables" ] || { echo "no metrics tables under models-artifacts/" >&2; exit 1; }
body="$(printf 'Automated release of dev at %s.\n\n' "$(git rev-parse --short HEAD)"; cat $tables)"
git push --force origin "HEAD:refs/heads/${branch}"
if gh pr view "$branch" --json number >/dev/null 2>&1; then
  gh pr edit "$branch" --body "$body"
else
  gh pr create --base main --head "$branch" --title "Release: dev -> main" --body "$body"
fi
