"""PostgreSQL storage of extracted FHIR resources (SQLAlchemy 2, psycopg 3, Alembic)."""
