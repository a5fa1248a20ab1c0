"""Example applications built on scim-toolkit's interfaces (they import none of its code)."""
