"""The repository layer: everything that knows MongoDB's shape lives here."""
