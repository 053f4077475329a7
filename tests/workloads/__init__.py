"""Tests of the workloads, the result model, targets and the runner."""
