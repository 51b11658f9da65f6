"""What connects the runtime to the outside: NATS (`nats/`), HTTP (`http/`), files."""
