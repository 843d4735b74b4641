"""The run store and its workers: statuses, schema, queries, sweeps, the worker and the demo's rules."""
