"""Data in and out of a store: SQL views over it (``sql``), and the checks that keep that SQL
read-only (``sql_guard``)."""
