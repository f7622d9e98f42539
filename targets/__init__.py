"""Target adapters: one per device kind (cpu, cuda, jetson) behind one interface."""
