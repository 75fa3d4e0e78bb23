"""The store's schema versions, applied by Alembic (``hookclient-receiver migrate``)."""
