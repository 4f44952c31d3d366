"""Runs tasks in plain DSPy, to compare dspex's optimizers with DSPy's own on the same task and test LM."""
