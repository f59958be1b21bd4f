#!/usr/bin/env bash
# Build Prometheus' web UI (the React "mantine-ui": query page, graph, targets, rules) into
# $1/prometheus-ui/static/mantine-ui. Prometheus built from the Go module proxy has no UI inside:
# the module holds its TypeScript sources, and the compiled bundle is embedded only by release
# builds (tag `builtinassets`). Without the tag, Prometheus serves ./static of its working
# directory, so `darooghe services up` runs it from $DAROOGHE_BUILD/prometheus-ui.
# Sources: web/ui of the pinned module (infra/prometheus/go.mod); packages: pnpm from npm.
set -euo pipefail
build=$(realpath -m "$1")
here=$(cd "$(dirname "$0")" && pwd)
module=$(cd "$here" && go list -m -f '{{.Dir}}' github.com/prometheus/prometheus)
pnpm=(npx -y pnpm@10.34.9)
work=$(mktemp -d "${TMPDIR:-/tmp}/darooghe-prometheus-ui.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp -r "$module/web/ui/." "$work"
chmod -R u+w "$work"
cd "$work"
if ! "${pnpm[@]}" install --frozen-lockfile --reporter=append-only >install.log 2>&1; then
  # The lock pins @mantine/* 9.7.2, and @mantine/code-highlight 9.7.2 is not on the npm
  # registry (404): move the @mantine family together to the newest 9.x there is.
  grep -m1 ERR_PNPM install.log || tail -5 install.log
  echo "build_ui: the locked packages did not install; updating @mantine/* within ^9.7.2"
  "${pnpm[@]}" update -r '@mantine/*' --reporter=append-only >install.log 2>&1 \
    || { tail -20 install.log; exit 1; }
fi
for module in lezer-promql codemirror-promql; do
  "${pnpm[@]}" --filter "@prometheus-io/$module" run build >/dev/null
done
# `vite build` alone: the package's `tsc && vite build` type-checks first (noEmit), and the newer
# @mantine types fail that check (`option` possibly null) without changing a byte of the bundle.
"${pnpm[@]}" --filter @prometheus-io/mantine-ui exec vite build --logLevel warn
mkdir -p "$build/prometheus-ui/static"
rm -rf "$build/prometheus-ui/static/mantine-ui"
mv mantine-ui/dist "$build/prometheus-ui/static/mantine-ui"
echo "build_ui: $build/prometheus-ui/static/mantine-ui"
