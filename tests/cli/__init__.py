"""Tests that run the real queueprof command through sys.executable."""
