"""The same model assembled the thesis's way: ddsp's `Autoencoder` with ddsp's processor
group, preprocessor inside the model and ddsp's own harmonic synth. Used as the reference
in benchmarks and parity tests; training goes through nas.training."""

from __future__ import annotations

from nas import ddsp_api

from ..config.presets import TrainConfig
from .decoders import build_decoder
from .synthesizer import NOISE_WINDOW, make_preprocessor, make_processors, make_spectral_loss


def reference_autoencoder(config: TrainConfig, sample_rate: int, example_secs: float):
    ddsp = ddsp_api.ddsp()
    models = ddsp_api.models()
    proc = make_processors(config.model.model_copy(update={"harmonic_synth": "ddsp"}), sample_rate, example_secs)
    proc["noise"] = ddsp.synths.FilteredNoise(n_samples=int(round(sample_rate * example_secs)), window_size=NOISE_WINDOW,
                                              name="filtered_noise")  # ddsp's own filter, not nas.models.noise
    dag = [
        (proc["harmonic"], ["amps", "harmonic_distribution", "f0_hz"]),
        (proc["noise"], ["noise_magnitudes"]),
        (ddsp.processors.Add(name="add"), ["filtered_noise/signal", "harmonic/signal"]),
        (proc["reverb"], ["add/signal"]),
    ]
    return models.Autoencoder(
        preprocessor=make_preprocessor(config.model, sample_rate, example_secs),
        encoder=None,
        decoder=build_decoder(config.model),
        processor_group=ddsp.processors.ProcessorGroup(dag=dag, name="processor_group"),
        losses=[make_spectral_loss(config.loss, sample_rate)],
    )


def reference_trainer(model, config: TrainConfig, strategy):
    trainers = ddsp_api.trainers()
    optim = config.optim
    return trainers.Trainer(model, strategy, checkpoints_to_keep=config.keep_checkpoints,
                            learning_rate=optim.learning_rate, lr_decay_steps=optim.decay_steps,
                            lr_decay_rate=optim.decay_rate, grad_clip_norm=optim.clip_norm)
