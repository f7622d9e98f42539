"""Target factories the tests inject (the fleet's nodes import ``fleet_targets:factory``).

This machine has only a CPU, so a second device kind is the real CPU target under
another target's name: every code path of the fleet (resources, placement, the node's
fingerprint, the store) sees a different kind, and the measurement is real. A GPU kind
(``cuda``) also offers runtime ``tensorrt`` through the fake TensorRT + pycuda pair
(``targets.fakes_tensorrt``), built through the real engine path and engine cache.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from targets.base import Runner
from targets.cpu import CpuTarget

BUILD_LOG = "builds.log"  # beside the engines: one line per TensorRT build
FAKE_GPU = {"gpu": "Fake GPU", "compute_capability": "8.7", "driver": "555.1", "tensorrt": "10.3.0"}


class CpuAs(CpuTarget):
    """The CPU target answering to ``name`` (its fingerprint says it is simulated)."""

    def __init__(self, name: str, gpu: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.name = name
        self.gpu = dict(gpu or {})

    def fingerprint(self) -> dict[str, Any]:
        return {**super().fingerprint(), "simulated_kind": self.name, **self.gpu}

    def runtimes(self) -> tuple[str, ...]:
        return (*super().runtimes(), "tensorrt") if self.gpu else super().runtimes()

    def runtime_availability(self) -> dict[str, Any]:
        out = super().runtime_availability()
        if self.gpu:
            from targets.base import Availability

            out["tensorrt"] = Availability(True)
        return out

    def export(
        self, model: Any, example_inputs: Mapping[str, np.ndarray], runtime: str, workdir: Path
    ) -> Runner:
        if runtime != "tensorrt" or not self.gpu:
            return super().export(model, example_inputs, runtime, workdir)
        from targets.cuda_buffers import PycudaBuffers, load_pycuda
        from targets.export import export_onnx
        from targets.fakes_tensorrt import FakeGpu, FakePycudaDriver, FakePycudaImporter
        from targets.tensorrt_engine import engine_runner

        gpu = FakeGpu()
        log = self.engine_cache_dir / BUILD_LOG if self.engine_cache_dir else None
        trt = CountingTensorRT(gpu, self.gpu["tensorrt"], log)
        buffers = PycudaBuffers(load_pycuda(FakePycudaImporter(FakePycudaDriver(gpu))))
        onnx_path = Path(workdir) / "model.onnx"
        order = export_onnx(model.eval(), example_inputs, onnx_path)
        shapes = {m: example_inputs[m].shape for m in order}
        return engine_runner(
            onnx_path, shapes, 64, order, Path(workdir), engines=self.engines(), trt=trt,
            buffers=buffers,
        )  # fmt: skip


def CountingTensorRT(gpu: Any, version: str, log: Path | None) -> Any:  # noqa: N802
    """The fake TensorRT, appending a line to ``log`` per engine build (a file, so the
    builds of every Ray worker of a node are counted)."""
    from targets.fakes_tensorrt import FakeTensorRT

    trt = FakeTensorRT(gpu, version)
    make = trt.Builder

    def builder(logger: Any) -> Any:
        b = make(logger)
        build = b.build_serialized_network

        def counted(network: Any, config: Any) -> Any:
            if log is not None:
                log.parent.mkdir(parents=True, exist_ok=True)
                with log.open("a") as f:
                    f.write(f"{version}\n")
            return build(network, config)

        b.build_serialized_network = counted
        return b

    trt.Builder = builder
    return trt


def factory(name: str) -> Any:
    if name == "cpu":
        return CpuTarget()
    return CpuAs(name, FAKE_GPU if name == "cuda" else None)
