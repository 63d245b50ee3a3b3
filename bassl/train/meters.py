"""Running means of the loss terms and the time split into data wait and compute, over a logging interval."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Meter:
    data_s: float = 0.0
    step_s: float = 0.0
    images: int = 0
    steps: int = 0
    sums: dict[str, float] = field(default_factory=dict)

    def add(self, terms: dict[str, float], data_s: float, step_s: float, images: int) -> None:
        for k, v in terms.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
        self.data_s += data_s
        self.step_s += step_s
        self.images += images
        self.steps += 1

    def means(self) -> dict[str, float]:
        return {k: v / max(1, self.steps) for k, v in self.sums.items()}

    @property
    def seconds(self) -> float:
        return self.data_s + self.step_s

    @property
    def images_per_s(self) -> float:
        return self.images / max(self.seconds, 1e-9)

    @property
    def data_wait_share(self) -> float:
        """The share of wall time spent waiting for the loader (open_clip's "Data (t)" against "Batch (t)")."""
        return self.data_s / max(self.seconds, 1e-9)
