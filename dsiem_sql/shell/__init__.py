"""The imperative shell around the pure engine: the command line, `serve` (NATS intake,
overload signal, watchdog, metrics), offline `replay`, logging and settings."""
