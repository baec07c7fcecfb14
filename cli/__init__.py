"""The `carprice` command: thin entrypoints that compose each process from the layers."""
