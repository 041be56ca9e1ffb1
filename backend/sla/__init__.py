"""Time limits: the working-day calendar and the arithmetic of due times over it."""
