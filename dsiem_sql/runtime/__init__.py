"""The imperative shell around the engine: the worker loop and its intakes' protocol, the
correlator, and the services put together from them (`serve`, `replay`)."""
