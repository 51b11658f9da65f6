"""NATS: options and their checks, the connection, the core and JetStream intakes."""
