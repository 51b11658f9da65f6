class StoreError(Exception):
    """A database that cannot be used; the message names the file and the reason."""
