#!/usr/bin/env bash
# Install the Debian packages one salesbi image stage needs; called from the Dockerfile.
#   install-system.sh runtime ODBC_DRIVER   Python 3.11 (when the base has none), OpenMP for LightGBM,
#                                           unixODBC and a SQL Server ODBC driver
#   install-system.sh build                 what creating the virtual environment needs (python3-venv)
# ODBC_DRIVER: msodbcsql18 (Microsoft ODBC Driver 18 from packages.microsoft.com; fails if unreachable),
#              freetds (FreeTDS via Debian's tdsodbc), or auto (Microsoft's where its repository is
#              reachable and supports this Debian release, else FreeTDS). /etc/salesbi/odbc-driver
#              records the ODBC driver name to put in a mssql+pyodbc URL (?driver=...).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive DEBCONF_NOWARNINGS=yes

role=${1:?runtime or build}
odbc=${2:-auto}
apt_get() { apt-get -o Acquire::Retries=3 "$@"; }

have_python311() { command -v python3 >/dev/null && python3 -c 'import sys; assert sys.version_info[:2] == (3, 11)'; }

install_msodbcsql18() {
  # Microsoft's documented install for Debian: their signing key and repository, then msodbcsql18
  . /etc/os-release
  local list="https://packages.microsoft.com/config/debian/${VERSION_ID%%.*}/prod.list"
  apt_get install -y --no-install-recommends curl gnupg >/dev/null
  curl -fsSL --max-time 30 https://packages.microsoft.com/keys/microsoft.asc \
    | gpg --dearmor -o /usr/share/keyrings/microsoft-prod.gpg || return 1
  curl -fsSL --max-time 30 "$list" -o /etc/apt/sources.list.d/mssql-release.list || return 1
  apt_get update -qq || return 1
  ACCEPT_EULA=Y apt_get install -y --no-install-recommends msodbcsql18 >/dev/null || return 1
  apt_get purge -y --auto-remove curl gnupg >/dev/null
  echo "ODBC Driver 18 for SQL Server" > /etc/salesbi/odbc-driver
}

install_freetds() {
  apt_get install -y --no-install-recommends tdsodbc >/dev/null
  # register the driver under the name "FreeTDS" (Debian ships the template, not the registration)
  if ! odbcinst -q -d -n FreeTDS >/dev/null 2>&1; then
    odbcinst -i -d -f /usr/share/tdsodbc/odbcinst.ini >/dev/null
  fi
  echo "FreeTDS" > /etc/salesbi/odbc-driver
}

undo_msodbcsql18() {
  echo "install-system: Microsoft ODBC Driver 18 not available here; installing FreeTDS instead" >&2
  rm -f /etc/apt/sources.list.d/mssql-release.list /usr/share/keyrings/microsoft-prod.gpg
  apt_get purge -y --auto-remove curl gnupg >/dev/null 2>&1 || true
  apt_get update -qq
}

apt_get update -qq
case "$role" in
  runtime)
    mkdir -p /etc/salesbi
    pkgs=(ca-certificates libgomp1 unixodbc)
    have_python311 || pkgs+=(python3)
    apt_get install -y --no-install-recommends "${pkgs[@]}" >/dev/null
    have_python311 || { echo "the base image has no Python 3.11 (Debian bookworm or python:3.11 images do)" >&2; exit 1; }
    case "$odbc" in
      msodbcsql18) install_msodbcsql18 ;;
      freetds) install_freetds ;;
      auto) install_msodbcsql18 2>/dev/null || { undo_msodbcsql18; install_freetds; } ;;
      *) echo "ODBC_DRIVER must be msodbcsql18, freetds or auto, not '$odbc'" >&2; exit 1 ;;
    esac
    ;;
  build)
    python3 -m venv --help >/dev/null 2>&1 && python3 -c 'import ensurepip' 2>/dev/null \
      || apt_get install -y --no-install-recommends python3-venv >/dev/null
    ;;
  *) echo "unknown role '$role'" >&2; exit 1 ;;
esac
apt_get clean
rm -rf /var/lib/apt/lists/*
