"""The Power BI project (PBIP: TMDL semantic model + PBIR report), generated from table definitions."""

from salesbi.powerbi.build import DEFAULT_PARQUET_FOLDER, build_powerbi_project, plan_project, project_files

__all__ = ["DEFAULT_PARQUET_FOLDER", "build_powerbi_project", "plan_project", "project_files"]
