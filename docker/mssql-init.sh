#!/usr/bin/env bash
# One-shot init for the compose service `mssql-init` (runs in the SQL Server image, which has sqlcmd):
# create the salesbi database, the pipeline's login (db_owner of that database) and the API's read-only
# login, then apply the checked-in DBA scripts sql_server/*.sql in order (schemas, tables, views, and the
# read-only roles salesbi_powerbi_reader / salesbi_api_reader). Idempotent: safe on every `up`.
set -euo pipefail
sqlcmd=$(ls /opt/mssql-tools18/bin/sqlcmd /opt/mssql-tools/bin/sqlcmd 2>/dev/null | head -n 1)
db=${SALESBI_DATABASE:-SalesBI}
export SQLCMDPASSWORD="$MSSQL_SA_PASSWORD" DB="$db"
run() { "$sqlcmd" -C -b -S "${MSSQL_HOST:-mssql}" -U sa "$@"; }

for _ in $(seq 1 60); do run -Q "SELECT 1" -o /dev/null 2>/dev/null && break; sleep 2; done

# passwords reach T-SQL as sqlcmd scripting variables read from the environment, never on a command line
# (they must not contain a single quote)
run -Q "
IF DB_ID(N'\$(DB)') IS NULL EXEC(N'CREATE DATABASE [\$(DB)]');
IF SUSER_ID(N'salesbi_etl') IS NULL
  BEGIN CREATE LOGIN [salesbi_etl] WITH PASSWORD = N'\$(SALESBI_ETL_PASSWORD)', DEFAULT_DATABASE = [\$(DB)] END
ELSE
  BEGIN ALTER LOGIN [salesbi_etl] WITH PASSWORD = N'\$(SALESBI_ETL_PASSWORD)' END;
IF SUSER_ID(N'salesbi_api') IS NULL
  BEGIN CREATE LOGIN [salesbi_api] WITH PASSWORD = N'\$(SALESBI_API_DB_PASSWORD)', DEFAULT_DATABASE = [\$(DB)] END
ELSE
  BEGIN ALTER LOGIN [salesbi_api] WITH PASSWORD = N'\$(SALESBI_API_DB_PASSWORD)' END;"

for script in /init/sql/*.sql; do
  echo "mssql-init: applying $(basename "$script")"
  run -d "$db" -i "$script"
done

run -d "$db" -Q "
IF DATABASE_PRINCIPAL_ID(N'salesbi_etl') IS NULL CREATE USER [salesbi_etl] FOR LOGIN [salesbi_etl];
ALTER ROLE [db_owner] ADD MEMBER [salesbi_etl];
IF DATABASE_PRINCIPAL_ID(N'salesbi_api') IS NULL CREATE USER [salesbi_api] FOR LOGIN [salesbi_api];
ALTER ROLE [salesbi_api_reader] ADD MEMBER [salesbi_api];"
echo "mssql-init: database $db ready (logins salesbi_etl: owner, salesbi_api: read-only on rpt and ml)"
