"""The command line and the wiring: the only place that imports everything."""
