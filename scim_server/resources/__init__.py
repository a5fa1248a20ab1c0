"""The HTTP surface: one module per endpoint family, wired together by ``routes``."""
