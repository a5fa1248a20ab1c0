"""Helpers shared by the test modules: clients, assertions, harnesses and the URNs they speak.

Fixtures live in the ``conftest.py`` files; everything a test module imports lives here, so that
no test module imports another (or a conftest).
"""
