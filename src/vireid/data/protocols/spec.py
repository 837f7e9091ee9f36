"""Protocols as data: each named protocol is one ``ProtocolSpec`` row."""

from __future__ import annotations

from dataclasses import dataclass

from ...registry import PROTOCOLS


@dataclass(frozen=True)
class ProtocolSpec:
    """How to build query/gallery lists and which metric rule scores them.

    ``rule`` selects the exclusion rule and CMC kind of ``vireid.evaluation.evaluate``:
    ``sysu`` (drop cam2 gallery for cam3 queries; unique-id CMC), ``regdb`` (no removal;
    standard CMC), ``llcm`` (drop same pid & camera; unique-id CMC), ``market`` (drop same
    pid & camera; standard CMC).
    """

    name: str
    dataset: str
    rule: str
    trials: tuple[int, ...]
    mode: str = ""  # sysu: all|indoor; regdb: v2t|t2v; llcm: i2v|v2i
    shots: int = 1
    description: str = ""

    @property
    def trial_is_split(self) -> bool:
        """RegDB trials are train/test splits (one model each); SYSU/LLCM trials are
        gallery re-draws of one test set."""
        return self.dataset == "regdb"


def _register(spec: ProtocolSpec) -> None:
    PROTOCOLS.register(spec.name)(spec)


for _mode, _cams in (("all", "cams 1,2,4,5"), ("indoor", "cams 1,2")):
    for _shot, _n in (("single", 1), ("multi", 10)):
        _register(
            ProtocolSpec(
                f"sysu/{_mode}/{_shot}",
                "sysu_mm01",
                "sysu",
                tuple(range(10)),
                _mode,
                _n,
                f"IR queries (cams 3,6) vs {_n} RGB image(s) per id per camera ({_cams}); "
                "10 seeded gallery draws",
            )
        )
_register(
    ProtocolSpec(
        "regdb/v2t",
        "regdb",
        "regdb",
        tuple(range(1, 11)),
        "v2t",
        1,
        "visible queries vs thermal gallery of the trial's 206 test ids",
    )
)
_register(
    ProtocolSpec(
        "regdb/t2v",
        "regdb",
        "regdb",
        tuple(range(1, 11)),
        "t2v",
        1,
        "thermal queries vs visible gallery (role swap of v2t)",
    )
)
_register(
    ProtocolSpec(
        "llcm/i2v",
        "llcm",
        "llcm",
        tuple(range(10)),
        "i2v",
        1,
        "all NIR queries vs one VIS image per id per camera; 10 draws",
    )
)
_register(
    ProtocolSpec(
        "llcm/v2i",
        "llcm",
        "llcm",
        tuple(range(10)),
        "v2i",
        1,
        "community semantics: one sampled NIR image per id per camera as "
        "probes vs all VIS images (DEEN's VIS->IR role swap)",
    )
)
_register(
    ProtocolSpec(
        "folder",
        "folder",
        "market",
        (0,),
        "",
        1,
        "user data: query split vs gallery split, same pid+camera removed",
    )
)


def get_protocol(name: str) -> ProtocolSpec:
    return PROTOCOLS.get(name)
