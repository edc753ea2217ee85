"""Hand-written fakes at the ports (store protocols, publish callables, clocks), one module per
service. Never emulators of a driver: each fake keeps only the promise its port makes."""
