#!/bin/sh
# Temporal's own core-SDK dashboard (temporalio/dashboards, MIT), pinned to a commit, into
# deploy/grafana/dashboards/ where Grafana's provisioning picks it up beside ours. Run once
# on a machine with internet; it is not vendored here. Its queries read the same core-SDK
# metrics (temporal_*, milliseconds) the worker serves; pick the "Prometheus" data source.
set -eu
COMMIT=f10143b89ca887b1096f5c9498ec2f1599562007
URL="https://raw.githubusercontent.com/temporalio/dashboards/$COMMIT/sdk/temporal-core-sdks-otel.json"
OUT="$(dirname "$0")/dashboards/temporal-core-sdks.json"
curl -fsSL "$URL" -o "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
echo "wrote $OUT"
