"""The HTML dashboard of a tenant: KPI tiles, charts and tables built from the dbt marts."""
