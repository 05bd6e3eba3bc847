#!/bin/sh
# Once the Temporal server answers: the namespace builds run in, and the search attributes
# they carry (cofounder/temporal.py SEARCH_ATTRIBUTE_KEYS). Run by docker-compose.yml's
# `temporal-setup` job before the API and the workers start; safe to run again. The `temporal`
# CLI reads TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE from the environment.
set -eu

: "${TEMPORAL_ADDRESS:?TEMPORAL_ADDRESS names the Temporal frontend}"
namespace="${TEMPORAL_NAMESPACE:-default}"
# Closed builds' histories are kept this long (`cofounder replay`, the Temporal UI).
retention="${TEMPORAL_RETENTION:-720h}"
attributes="BuildStatus Project Owner"

# Runs "$@" until it succeeds, every 2 s for 2 min, and prints its output: a new server,
# namespace or search attribute takes a few seconds to be seen everywhere.
retry() {
    tries=0
    while ! out="$("$@" 2>&1)"; do
        tries=$((tries + 1))
        if [ "$tries" -ge 60 ]; then
            printf 'gave up after 2 minutes: %s\n%s\n' "$*" "$out" >&2
            return 1
        fi
        sleep 2
    done
    printf '%s\n' "$out"
}

namespace_exists() {
    temporal operator namespace describe --namespace "$namespace" >/dev/null 2>&1
}
ensure_namespace() {
    namespace_exists ||
        temporal operator namespace create --namespace "$namespace" --retention "$retention"
}
has_attribute() {
    temporal operator search-attribute list --namespace "$namespace" | grep -qw "$1"
}
ensure_attribute() {
    has_attribute "$1" ||
        temporal operator search-attribute create --namespace "$namespace" --name "$1" \
            --type Keyword
}

retry temporal operator cluster health >/dev/null
if ! namespace_exists; then
    echo "creating namespace $namespace (retention $retention)"
fi
retry ensure_namespace >/dev/null
for name in $attributes; do
    if ! has_attribute "$name" 2>/dev/null; then
        echo "registering search attribute $name (Keyword)"
    fi
    retry ensure_attribute "$name" >/dev/null
done
# A query on them is refused until the server has them in its cache: wait for that too, so
# the first build started does not fail on a search attribute the server says it lacks.
for name in $attributes; do
    retry temporal workflow list --namespace "$namespace" --query "$name = 'probe'" \
        --limit 1 >/dev/null
done
echo "namespace $namespace is ready, with search attributes: $attributes"
