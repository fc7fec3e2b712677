"""Adapters that present other Keras implementations through keraspec's implementation contract."""
