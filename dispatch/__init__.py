"""Pure decision logic: who gets an order and why. No I/O, no Temporal; tested alone."""
