"""Local doubles of vendor HTTP APIs, driven by the vendors' real SDKs in the tests."""
