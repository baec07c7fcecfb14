"""Infrastructure: settings, embedded services, clients and the `carprice` CLI."""
