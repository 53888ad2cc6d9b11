#!/usr/bin/env bash
# Register salesbi with the Prefect server at $PREFECT_API_URL: create the process work pool (if missing)
# and every deployment in /app/prefect.yaml. Idempotent; the compose service `deploy` runs it once.
set -euo pipefail
cd "${SALESBI_HOME:-/app}"
pool=${SALESBI_WORK_POOL:-salesbi-process}
if ! prefect work-pool inspect "$pool" >/dev/null 2>&1; then
  prefect work-pool create "$pool" --type process
fi
prefect --no-prompt deploy --all
prefect deployment ls
