#!/usr/bin/env bash
# Register salesbi with the Prefect server at $PREFECT_API_URL: create the process work pool (if missing)
# and every deployment in /app/prefect.yaml. Idempotent; the compose service `deploy` runs it once.
set -euo pipefail
cd "${SALESBI_HOME:-/app}"
pool=${SALESBI_WORK_POOL:-salesbi-process}
# a worker started at the same time may create the pool first: then inspecting it is enough
prefect work-pool inspect "$pool" >/dev/null 2>&1 \
  || prefect work-pool create "$pool" --type process \
  || prefect work-pool inspect "$pool" >/dev/null
prefect --no-prompt deploy --all
prefect deployment ls
