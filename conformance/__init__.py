"""A SCIM conformance runner for any server: RFC checks, IdP test suites, reports."""
