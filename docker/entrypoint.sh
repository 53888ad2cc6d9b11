#!/usr/bin/env bash
# Image entrypoint: wait for the services named in $SALESBI_WAIT_FOR (space-separated host:port or
# http(s) URLs that must answer 2xx), at most $SALESBI_WAIT_SECONDS (default 180), then run the command.
# Compose's depends_on conditions are not honoured by every engine (podman 4.3 ignores them), so each
# service waits for what it needs itself.
set -euo pipefail
if [ -n "${SALESBI_WAIT_FOR:-}" ]; then
  python3 - "${SALESBI_WAIT_SECONDS:-180}" ${SALESBI_WAIT_FOR} <<'PY'
import socket, sys, time, urllib.request

deadline = time.monotonic() + float(sys.argv[1])
for target in sys.argv[2:]:
    while True:
        try:
            if target.startswith(("http://", "https://")):
                with urllib.request.urlopen(target, timeout=5) as r:
                    ok = 200 <= r.status < 300
            else:
                host, _, port = target.rpartition(":")
                socket.create_connection((host, int(port)), timeout=5).close()
                ok = True
        except OSError:
            ok = False
        if ok:
            print(f"entrypoint: {target} is up", flush=True)
            break
        if time.monotonic() > deadline:
            sys.exit(f"entrypoint: gave up waiting for {target}")
        time.sleep(2)
PY
fi
exec "$@"
