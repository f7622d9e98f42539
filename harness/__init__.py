"""The harness: profiles -> cells -> measured results in a store, and the command line."""
