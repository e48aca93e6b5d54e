"""Helpers only the tests use (fakes at the source interfaces, HTML and schema checks,
RFC 9112's table); what benchmarks or `scripts/cluster` also need lives in `harness/`."""
