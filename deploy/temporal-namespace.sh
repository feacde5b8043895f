#!/bin/sh
# One-shot job (temporalio/admin-tools image): once the Temporal server answers, make sure
# the namespace exists and carries the custom search attributes o2o-dispatch writes.
# Idempotent: what already exists is left as it is.
#
# Environment: TEMPORAL_ADDRESS (read by the temporal CLI), TEMPORAL_NAMESPACE,
# TEMPORAL_NAMESPACE_RETENTION (for a namespace created here; e.g. 720h = 30 days).
set -eu

: "${TEMPORAL_ADDRESS:?TEMPORAL_ADDRESS is required}"
NAMESPACE="${TEMPORAL_NAMESPACE:-default}"
RETENTION="${TEMPORAL_NAMESPACE_RETENTION:-720h}"

# Name and type of every custom search attribute the workflows set. The SQL visibility
# store has a fixed number of slots per type (PostgreSQL: 10 Keyword, 3 Int, ...).
SEARCH_ATTRIBUTES="
OrderId Keyword
OrderType Keyword
StoreId Keyword
SubSite Keyword
AssigneeId Keyword
OrderStatus Keyword
ReassignCount Int
"

# Run "$@" until it succeeds, at most $1 times, 2 s apart.
retry() {
    tries=$1
    shift
    n=1
    until "$@" >/dev/null 2>&1; do
        if [ "$n" -ge "$tries" ]; then
            return 1
        fi
        n=$((n + 1))
        sleep 2
    done
}

server_serving() {
    temporal operator cluster health 2>/dev/null | grep -q SERVING
}

echo "Waiting for the Temporal server at $TEMPORAL_ADDRESS ..."
retry 90 server_serving || { echo "Temporal is not serving after 3 minutes" >&2; exit 1; }

if temporal operator namespace describe --namespace "$NAMESPACE" >/dev/null 2>&1; then
    echo "Namespace $NAMESPACE exists."
else
    echo "Creating namespace $NAMESPACE (retention $RETENTION) ..."
    temporal operator namespace create --namespace "$NAMESPACE" --retention "$RETENTION" \
        --description "o2o-dispatch orders" \
        || temporal operator namespace describe --namespace "$NAMESPACE" >/dev/null
fi

# A new namespace takes a moment to reach every part of the server.
retry 30 temporal operator search-attribute list --namespace "$NAMESPACE" \
    || { echo "Namespace $NAMESPACE is not usable" >&2; exit 1; }

while read -r name type; do
    [ -n "$name" ] || continue
    if out=$(temporal operator search-attribute create --namespace "$NAMESPACE" \
        --name "$name" --type "$type" 2>&1); then
        echo "Search attribute $name ($type): ok"
    elif echo "$out" | grep -qi "already exists" && ! echo "$out" | grep -qi "different type"; then
        echo "Search attribute $name ($type): already exists"
    else
        echo "Search attribute $name ($type) failed: $out" >&2
        exit 1
    fi
done <<EOF
$SEARCH_ATTRIBUTES
EOF

# Check the outcome rather than trust each answer; a new attribute may take a few
# seconds to show in the namespace's cached configuration.
all_present() {
    listing=$(temporal operator search-attribute list --namespace "$NAMESPACE") || return 1
    for name in $(echo "$SEARCH_ATTRIBUTES" | awk 'NF { print $1 }'); do
        echo "$listing" | grep -qw "$name" || return 1
    done
}
if ! retry 15 all_present; then
    echo "Not every search attribute shows in namespace $NAMESPACE:" >&2
    temporal operator search-attribute list --namespace "$NAMESPACE" >&2 || true
    exit 1
fi
echo "Namespace $NAMESPACE is ready with its search attributes."
