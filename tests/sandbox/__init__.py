"""Tests of the sandbox fakes (Slack emulator, model server, offline model)."""
