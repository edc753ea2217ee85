"""Operator commands on the broker (dlq, topology, users), mounted in the ``gridwhistle`` CLI."""
