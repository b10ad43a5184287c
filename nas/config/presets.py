"""Model presets as typed configs (no gin): the thesis's four decoders and their synth.

`cnn-tiny` is DDSP-CNN-Tiny (2,446 decoder parameters with the output Normalize the
presets leave out, 2,430 without), with each residual layer normalised per frame so that
it streams; `cnn` the same at 128 channels;
`full` is DDSP's RnnFcDecoder as in the DDSP paper; `rnn-tiny` its small GRU variant.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .strict import Strict

PresetName = Literal["cnn-tiny", "cnn", "rnn-tiny", "full", "ddsp-vst"]


class ModelConfig(Strict):
    decoder: Literal["dilated-cnn", "rnn-fc"] = Field(description="the decoder network: the thesis's dilated CNN "
                                                       "or ddsp's GRU + fully connected stacks")
    channels: int = Field(8, gt=0, description="dilated-cnn: channels of every conv")
    kernel_size: int = Field(3, gt=0, description="the CNN's causal convolution width")
    dilations: tuple[int, ...] = Field((1, 3, 9), description="dilated-cnn: one residual layer per dilation")
    stacks: int = Field(2, gt=0, description="dilated-cnn: repeats of the dilation sequence")
    rnn_units: int = Field(512, gt=0, description="rnn-fc: GRU units")
    fc_units: int = Field(512, gt=0, description="rnn-fc: units of the fully connected stacks")
    fc_layers: int = Field(3, ge=0, description="rnn-fc: layers per fully connected stack (0: none)")
    n_harmonics: int = Field(60, gt=0, description="harmonics of the additive synth")
    n_noise_bands: int = Field(65, gt=1, description="bands of the filtered-noise synth")
    standardize_inputs: bool = Field(
        False, description="dilated-cnn: the decoder's inputs centred and scaled by the dataset's loudness and pitch "
                           "statistics, so its first layer sees unit-scale inputs (ddsp's ld_scaled and f0_scaled "
                           "span 0.2 and 0.08 on the demo): 6.8 against 7.7 at step 500 (docs/benchmarks.md, Defaults)")
    norm: Literal["sequence", "frame"] = Field(
        "sequence", description="dilated-cnn: what each residual layer's Normalize pools over. `sequence`: ddsp's "
                                "layer Normalize, over the whole clip's frames and channels (the thesis's model; "
                                "every output depends on future frames, so it cannot stream). `frame`: each frame's "
                                "channels alone, causal and streamable")
    output_norm: bool = Field(
        True, description="dilated-cnn: ddsp's layer Normalize (pooled over time and channels) before the Dense "
                          "head, as the thesis has it. Off in the presets: it holds the head's inputs at unit scale, "
                          "which under Adam's per-weight steps slows learning (eval loss 11.2 instead of 8.9 at "
                          "step 500: docs/benchmarks.md, Defaults)")
    level: Literal["loudness", "power"] = Field(
        "loudness", description="the decoder's level input: A-weighted loudness (ddsp's and the thesis's) or "
                                "power, the mean square of 1,024 samples that DDSP-VST's feature model computes "
                                "(nas.data.power)")
    reverb_length: int = Field(16000, gt=1, description="taps of the trainable reverb")
    reverb_scale: float = Field(
        1.0, gt=0, le=1, description="the trainable impulse response is held divided by this, so Adam moves each "
                                     "tap this much slower than a decoder weight. At 1 (ddsp's), 16,000 taps at "
                                     "the learning rate outgrow the dry signal within 100 steps and smear notes")
    control_rate: int = Field(250, gt=0, description="decoder frames per second (ddsp: 1000 per 4 s)")
    align_frames: bool = Field(
        False, description="centred f0 and loudness tracks resampled to the control rate with each frame at its own "
                           "time; ddsp's resample plays the 201 frames of 4 s 0.5% fast (f0 up to 20 ms early)")
    harmonic_synth: Literal["matmul", "ddsp"] = Field(
        "matmul", description="how the harmonic signal is computed: nas' per-frame matrix product or ddsp's "
                              "own (same signal, slower)")


class LossConfig(Strict):
    fft_sizes: tuple[int, ...] = Field((2048, 1024, 512, 256, 128, 64), description="the multi-scale loss's FFTs")
    overlap: float = Field(0.75, ge=0, lt=1, description="of consecutive frames of each FFT")
    mag_weight: float = Field(1.0, ge=0, description="weight of the L1 distance of magnitudes")
    logmag_weight: float = Field(1.0, ge=0, description="weight of the L1 distance of log magnitudes")
    log_floor: float = Field(
        0.0, ge=0, description="log magnitudes are taken of max(magnitude, floor). 0 is ddsp 3.7's safe_log, "
                               "which replaces only non-positive magnitudes (by 1e-5), so bins far below hearing, in "
                               "rests and fades, weigh as much as the music's. ddsp's code of 2021 floored at 1e-5")
    loudness_weight: float = Field(
        0.0, ge=0, description="weight of the L1 distance (dB) of A-weighted loudness, taken from the loss's own "
                               "512-sample spectrogram as nas's loudness feature is. The spectral terms alone leave "
                               "the demo violin's resyntheses about 1 dB quiet (2 dB on loud notes); 0.3 takes its "
                               "loudness error from 1.51 to 0.89 dB and its spectral loss from 5.31 to 5.49 "
                               "(docs/benchmarks.md, loudness_term.py)")


class OptimConfig(Strict):
    learning_rate: float = Field(3e-4, gt=0, description="peak learning rate (after any warm-up)")
    schedule: Literal["exponential", "cosine"] = Field(
        "exponential", description="exponential: x decay_rate every decay_steps (ddsp's, the thesis's); cosine: "
                                   "to 0 over decay_steps after the warm-up")
    warmup_steps: int = Field(0, ge=0, description="linear warm-up from 0 to the peak over these steps")
    decay_rate: float = Field(0.98, gt=0, le=1, description="exponential: the factor every decay_steps")
    decay_steps: int = Field(10000, gt=0, description="exponential: steps per decay; cosine: its length")
    clip_norm: float = Field(3.0, gt=0, description="gradients are clipped to this global norm")
    batch_size: int = Field(8, gt=0, description="global batch (split across devices)")


class TrainConfig(Strict):
    preset: PresetName = Field("cnn-tiny", description="the named preset (PRESETS) the model settings started "
                               "from")
    recipe: str = Field("thesis", description="the named recipe (RECIPES) the optimiser settings started from")
    model: ModelConfig
    loss: LossConfig = Field(LossConfig(log_floor=1e-5), description="the training objective; evaluation "
                             "reports ddsp's loss as it is (LossConfig())")
    optim: OptimConfig = OptimConfig()
    steps: int = Field(30000, gt=0, description="train until this global step")
    minutes: float | None = Field(
        None, gt=0, description="a wall-time budget: stop when the run's training loop has taken this many minutes "
                                "in all (resumed parts add up), or at `steps` if that comes first; the model is saved "
                                "at the step reached. Not part of the run's id: the same budget again reuses the "
                                "model, a larger one goes on from its checkpoint. A cosine recipe still decays over "
                                "`steps`, so pair a budget with the steps it reaches or with an exponential schedule")
    seed: int = Field(0, description="initial weights and data order; part of the run id")
    checkpoint_every: int = Field(500, gt=0, description="steps between checkpoints (a killed run resumes "
                                  "from the latest)")
    keep_checkpoints: int = Field(3, gt=0, description="checkpoints kept")
    log_every: int = Field(50, gt=0, description="metrics every this many steps")
    sample_every: int = Field(1000, gt=0, description="audio + spectrogram of an eval example")
    jit_compile: bool | None = Field(
        None, description="compile the model's forward and backward with XLA; default: where measured faster "
                          "(the CNN decoders, not the GRU ones: docs/benchmarks.md, train_vs_ddsp.py)")

    @property
    def use_xla(self) -> bool:
        return self.model.decoder == "dilated-cnn" if self.jit_compile is None else self.jit_compile

    def identity(self) -> dict:
        """What makes a run: everything but the step and time budgets, the reporting cadence and the
        recipe's name (its settings are in), so raising `steps` continues the same run from
        its checkpoint."""
        budgets = ("steps", "minutes", "log_every", "sample_every", "checkpoint_every", "keep_checkpoints", "jit_compile",
                   "recipe")
        # runs from before the loudness term keep their ids
        loss = {} if self.loss.loudness_weight else {"loss": {"loudness_weight"}}
        return self.model_dump(mode="json", exclude={**dict.fromkeys(budgets, True), **loss})


# The defaults of ModelConfig describe models as they were first trained (a model.json
# without these keys loads as it was); the presets set what trains faster and plays in time.
_FASTER = {"output_norm": False, "reverb_scale": 0.01, "align_frames": True}
_CNN = {"standardize_inputs": True, "norm": "frame", "reverb_length": 16000}  # frame: as good, and it streams
PRESETS: dict[str, ModelConfig] = {
    "cnn-tiny": ModelConfig(decoder="dilated-cnn", channels=8, **_CNN, **_FASTER),
    "cnn": ModelConfig(decoder="dilated-cnn", channels=128, **_CNN, **_FASTER),
    "rnn-tiny": ModelConfig(decoder="rnn-fc", rnn_units=256, fc_layers=0, reverb_length=16000, **_FASTER),
    "full": ModelConfig(decoder="rnn-fc", rnn_units=512, fc_units=512, fc_layers=3, reverb_length=48000, **_FASTER),
    # cnn-tiny on what DDSP-VST gives a model: power, 50 frames a second (nas.play.ddsp_vst)
    "ddsp-vst": ModelConfig(decoder="dilated-cnn", channels=8, control_rate=50, level="power", n_harmonics=60,
                            n_noise_bands=65, **_CNN, **_FASTER),
}


def _set_dotted(tree: dict, dotted: str, value) -> None:
    *parents, leaf = dotted.split(".")
    for key in parents:
        if not isinstance(tree.get(key), dict):
            raise KeyError(dotted)
        tree = tree[key]
    tree[leaf] = value


# Training recipes: named sets of overrides. `thesis` is the thesis's (and ddsp's) Adam
# 3e-4 with x0.98 every 10k steps; `fast` reaches the same quality in fewer steps on
# our instruments (docs/benchmarks.md, Defaults). A cosine ends with the step budget
# unless decay_steps is set, so there a different budget is a different run.
RECIPES: dict[str, dict] = {
    "thesis": {},
    "fast": {"optim.learning_rate": 3e-3, "optim.schedule": "cosine", "optim.warmup_steps": 200},
}
RecipeName = Literal["thesis", "fast"]


def train_config(preset: str = "cnn-tiny", overrides: dict | None = None, recipe: str = "thesis") -> TrainConfig:
    """A preset with a recipe and dotted overrides on top, e.g. {"steps": 500,
    "optim.learning_rate": 1e-3, "model.channels": 16}; unknown keys and wrong types raise
    pydantic's ValidationError."""
    overrides = dict(overrides or {})
    recipe = overrides.pop("recipe", recipe)  # a command line's --recipe travels with the overrides
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; choose one of {', '.join(RECIPES)}")
    tree = TrainConfig(preset=preset, recipe=recipe, model=PRESETS[preset]).model_dump()
    settings = {**RECIPES[recipe], **overrides}
    for dotted, value in settings.items():
        try:
            _set_dotted(tree, dotted, value)
        except KeyError:
            raise ValueError(f"override {dotted!r}: no such setting") from None
    config = TrainConfig.model_validate(tree)
    optim = config.optim
    if optim.schedule == "cosine" and "optim.decay_steps" not in settings and isinstance(config.steps, int):
        decay = max(1, config.steps - optim.warmup_steps)  # the cosine spans the steps after the warm-up
        config = config.model_copy(update={"optim": optim.model_copy(update={"decay_steps": decay})})
    return config


def resolve_training(training, settings: dict | None = None) -> TrainConfig:
    """A dataset config's `training` section, with what a command line or flow run asks for
    on top: `preset`, `recipe`, `steps`, `minutes` and further dotted overrides."""
    settings = {**training.overrides, **(settings or {})}
    preset = settings.pop("preset", None) or training.preset
    settings["steps"] = settings.get("steps") or training.steps
    settings["minutes"] = settings.get("minutes") or training.minutes
    return train_config(preset, settings, training.recipe)
