"""Teacher training and knowledge distillation under jit with explicit shardings."""
