"""Activities: the only code that touches the outside world. One module per integration."""
