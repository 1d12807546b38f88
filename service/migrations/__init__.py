"""Alembic migrations of the service's database; ``abcscale.service.db.migrate`` runs them at start-up."""
