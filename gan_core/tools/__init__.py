"""Tools around the trainer: the throughput bench and the prepared GPU check."""
