"""Database layer: models, session factory and repositories."""
