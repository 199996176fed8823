"""genlab: a JAX research codebase for generative deep learning."""
