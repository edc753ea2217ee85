"""Registry dev tools: the ``gridwhistle registry`` commands and the county scaffold generator."""
