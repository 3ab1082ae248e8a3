#!/usr/bin/env bash
# Starts librdkafka's mock Kafka cluster (real protocol, no Java) for trying hisbridge by hand.
# Prints the bootstrap address; point hisbridge.yaml's kafka.brokers (or KAFKA_BROKERS) at it.
# Topics auto-create on first use with 4 partitions. Stop with Ctrl-C.
set -euo pipefail
command -v kcat >/dev/null 2>&1 || { echo "kcat is not installed: apt-get install kcat" >&2; exit 1; }
exec kcat -b localhost:0 -X test.mock.num.brokers="${MOCK_BROKERS:-1}" -C -t __hisbridge_mock_keepalive -q -d mock 2> >(grep --line-buffered -o 'bootstrap.servers=[0-9.:,]*' | awk '!s++ { print; fflush() }' >&2)
