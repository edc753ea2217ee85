"""The department side of dispatch: the client that consumes a work queue and sends commands, the
inbox a person works from, and the ``gridwhistle dept`` commands (``inbox``, the ``work`` bot)."""
