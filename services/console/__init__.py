"""The web console (port 8040): pages for departments over the stats API; commands to dispatch."""
