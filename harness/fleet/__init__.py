"""One suite across a fleet of devices, with Ray as the engine (``sentryfuse run --cluster``).

Ray schedules; we do not. Each device node advertises what it is as custom resources
(``sentryfuse/<target>`` with quantity 1, plus ``sentryfuse/<target>:<device-id>``), and
every unit of work asks for one unit of its target's kind resource, so a device runs one
unit at a time and a measurement never shares its device. Workers send finished cells
back as plain data; the driver alone writes the results store, one transaction per cell,
so ``--resume`` and ``kill -9`` behave exactly as on one machine.

Modules: ``resources`` (names), ``cluster`` (connect / throwaway local cluster),
``shipping`` (artefacts as safetensors + JSON bytes), ``units`` (what one task runs),
``worker`` (the node side), ``progress`` (per-device counts and ETA), ``driver``.
"""
