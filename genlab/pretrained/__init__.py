"""Networks a run uses but does not train, with the weights they ship with."""
