"""The Power BI project (PBIP: TMDL semantic model + PBIR report), generated from table definitions."""
