"""Helpers shared by the tests: configs, waiting, fake servers, fault harness."""
