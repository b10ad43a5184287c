"""A Neutone bundle's settings, beside its arrays: what `nas.play.neutone.bundle` writes and
`nas.play.neutone_module` builds the chain from, in the export's own environment. Standard
library only, so both sides share this one definition."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Constants:
    """nas's constants the chain uses (TorchScript reads no module globals)."""

    frame: int  # CREPE's window
    loudness_n_fft: int
    power_frame: int
    sure_pitch: float
    sounding_db: float
    quiet_db: float
    db_range: float
    f0_range: float
    noise_bias: float
    eps: float  # the decoder's normalisation


@dataclass(frozen=True)
class BundleSettings:
    sample_rate: int
    hop: int
    n_harmonics: int
    crop: int  # of the filtered noise's impulse responses
    level: str  # the decoder's level input: "loudness" or "power"
    lookahead: int  # samples past a frame's time that its feature windows reach
    delay: int  # what the module reports to the host
    buffer_sizes: tuple[int, ...]
    pitch_every: int  # frames between pitch estimates
    name: str
    version: str
    constants: Constants

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> BundleSettings:
        data = json.loads(text)
        return cls(**{**data, "constants": Constants(**data["constants"]),
                      "buffer_sizes": tuple(data["buffer_sizes"])})
