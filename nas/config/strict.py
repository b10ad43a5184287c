"""The base of every config schema: unknown keys are errors, and a loaded config is frozen."""

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
