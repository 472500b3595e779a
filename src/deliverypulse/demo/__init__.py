"""The offline demo: a bundled organisation served to the real connectors by local fakes."""
