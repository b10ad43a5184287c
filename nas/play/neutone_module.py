"""The Neutone FX module, in the export's own environment (torch 2.11, neutone-sdk 1.5.2):
`nas play`'s chain in TorchScript, built from the arrays `nas.play.neutone.bundle` wrote.

The chain per block of 16 kHz audio (any multiple of the hop: the SDK hands the model one of
its native buffer sizes):
- features as `nas.play.live.LiveFeatures` makes them: A-weighted loudness of 512 samples
  (and power of 1,024 for a model trained on power), CREPE tiny on 1,024 samples every 4th
  frame with local-average decoding, held between; each frame's windows end 512 samples
  past its time;
- the knobs: octave shift, level offset (dB), and the frames between notes attenuated by
  20 dB as in nas's transfer;
- the decoder one frame at a time in effect (each causal convolution over its kept history
  and the new frames), the controls, harmonic synthesis with the phase carried, filtered
  noise from the model's own noise sequence, and the reverb (an FFT convolution with its
  tail carried).
The output runs `delay` samples behind the input (the lookahead, and a hop more where a
buffer is not a whole number of hops): what `calc_model_delay_samples` says.

Entry points: `export BUNDLE OUT` writes OUT/model.nm through `save_neutone_model`;
`parity BUNDLE INPUTS OUTPUT` runs the chain on given features or audio for the tests;
`benchmark MODEL OUTPUT` times model.nm as the plugin runs it (benchmarks/neutone.py).
Each runs torch on one thread, as the plugin runs a model: the SDK's checks of a model this
small take the same wall time on one thread as on two cores' worth, with 0.59x the CPU
(34 s instead of 57 s on an idle 2-core machine).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import torch
from torch import Tensor, nn

from nas.play.neutone_settings import BundleSettings

CONSTANT_ARRAYS = ("input_mean", "input_std", "input_conv", "kernels", "scales", "shifts", "out_norm", "dense", "bias",
                   "impulses", "noise", "fall", "rise", "a_weighting", "loudness_window", "bin_cents", "crepe_dense",
                   "crepe_dense_bias")


def _exp_sigmoid(x: Tensor) -> Tensor:
    return 2.0 * torch.exp(-2.302585092994046 * torch.log1p(torch.exp(-x))) + 1e-7  # ln 10


class _CrepeBlock(nn.Module):
    """conv (TensorFlow's SAME padding: the odd sample at the end) -> ReLU -> batch norm
    (folded) -> max pool of 2."""

    def __init__(self, kernel: Tensor, bias: Tensor, scale: Tensor, shift: Tensor, stride: int, length: int):
        super().__init__()
        width, inputs, outputs = (int(n) for n in kernel.shape)
        self.conv = nn.Conv1d(inputs, outputs, width, stride=stride)
        self.conv.weight.data = kernel.permute(2, 1, 0).contiguous()
        self.conv.bias.data = bias.clone()
        self.register_buffer("scale", scale[:, None].clone())
        self.register_buffer("shift", shift[:, None].clone())
        out = -(-length // stride)
        total = max((out - 1) * stride + width - length, 0)
        self.left: int = total // 2
        self.right: int = total - total // 2
        self.out_length: int = out // 2

    def forward(self, x: Tensor) -> Tensor:
        x = torch.relu(self.conv(nn.functional.pad(x, (self.left, self.right))))
        return nn.functional.max_pool1d(x * self.scale + self.shift, 2, 2)


class Chain(nn.Module):
    def __init__(self, arrays: Dict[str, np.ndarray], settings: BundleSettings):
        super().__init__()
        t = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}
        # nas's constants, as the bundle carries them (TorchScript reads no module globals)
        c = settings.constants
        self.frame: int = c.frame
        self.loudness_n_fft: int = c.loudness_n_fft
        self.power_frame: int = c.power_frame
        self.sure_pitch: float = float(c.sure_pitch)
        self.sounding_db: float = float(c.sounding_db)
        self.quiet_db: float = float(c.quiet_db)
        self.db_range: float = float(c.db_range)
        self.f0_range: float = float(c.f0_range)
        self.noise_bias: float = float(c.noise_bias)
        self.eps: float = float(c.eps)
        self.log2_440: float = math.log2(440.0)
        self.sample_rate: int = settings.sample_rate
        self.hop: int = settings.hop
        self.n_harmonics: int = settings.n_harmonics
        self.crop: int = settings.crop
        self.lookahead: int = settings.lookahead
        self.buffer_sizes: List[int] = list(settings.buffer_sizes)
        self.delay: int = settings.delay
        self.pitch_every: int = settings.pitch_every
        self.power: bool = settings.level == "power"
        self.name: str = settings.name[:30]  # the SDK's limit
        self.version: str = settings.version
        self.taps: int = int(t["input_conv"].shape[0])
        self.dilations: List[int] = [int(d) for d in t["dilations"]]
        self.has_out_norm: bool = int(t["out_norm"].shape[1]) > 0
        # as the bundle holds them: the decoder (conv kernels [taps, in, out]: a few frames a
        # call, where a product per tap takes a tenth of torch's conv1d), the synthesizers'
        # filters, crossfade and noise sequence, the loudness window and A-weighting, CREPE's
        # bins and classifier
        for name in CONSTANT_ARRAYS:
            self.register_buffer(name, t[name])
        self.noise_fft: int = 1 << math.ceil(math.log2(self.hop + self.impulses.shape[1] - 1))
        # the reverb: uniformly partitioned convolution (overlap-save, partitions of a hop,
        # FFTs of two, a frequency-domain delay line), as the streaming engine's
        ir = t["reverb"].clone()
        ir[0] = 0.0  # ddsp masks the first tap
        partitions = -(-ir.shape[0] // self.hop)
        padded = torch.zeros(partitions, 2 * self.hop, dtype=torch.float64)
        padded[:, :self.hop] = nn.functional.pad(ir, (0, partitions * self.hop - ir.shape[0])).reshape(partitions, -1)
        self.register_buffer("reverb_spectra", torch.fft.rfft(padded))
        self.crepe = nn.ModuleList()
        length = self.frame
        for i, stride in enumerate(int(s) for s in t["crepe_strides"]):
            block = _CrepeBlock(t[f"crepe{i}.kernel"], t[f"crepe{i}.bias"], t[f"crepe{i}.scale"], t[f"crepe{i}.shift"],
                                stride, length)
            self.crepe.append(block)
            length = block.out_length
        # the state, all of it reset by `reset`
        channels = int(self.kernels.shape[-1])
        self.register_buffer("audio", torch.zeros(self.frame + self.hop))
        self.register_buffer("input_history", torch.zeros(self.taps - 1, 2))
        self.register_buffer("histories", torch.zeros(len(self.dilations), (self.taps - 1) * max(self.dilations),
                                                      channels))
        self.register_buffer("last_f0", torch.zeros(1, dtype=torch.float64))
        self.register_buffer("last_amps", torch.zeros(self.n_harmonics))
        self.register_buffer("phase", torch.zeros(1, dtype=torch.float64))
        self.register_buffer("noise_acc", torch.zeros(max(self.buffer_sizes) + 4 * self.hop + self.impulses.shape[1]))
        self.register_buffer("reverb_line", torch.zeros_like(self.reverb_spectra))
        self.register_buffer("reverb_previous", torch.zeros(self.hop, dtype=torch.float64))
        self.register_buffer("pending", torch.zeros(self.delay))
        self.register_buffer("held", torch.zeros(2))
        # samples heard, frames given features, frames decoded, the noise sequence's read position
        self.register_buffer("counts", torch.zeros(4, dtype=torch.int64))

    @torch.jit.export
    def reset(self) -> None:
        for state in (self.audio, self.input_history, self.histories, self.last_f0, self.last_amps, self.phase,
                      self.noise_acc, self.reverb_line, self.reverb_previous, self.held, self.counts):
            state.zero_()
        self.pending = torch.zeros(self.delay)

    # --- features -------------------------------------------------------------------------
    def _crepe(self, frames: Tensor) -> Tuple[Tensor, Tensor]:
        """frames [n, 1024] -> (f0 Hz, confidence) by CREPE tiny and local-average decoding."""
        x = frames - frames.mean(dim=1, keepdim=True)
        x = x / torch.clamp(x.std(dim=1, unbiased=False, keepdim=True), min=1e-8)
        x = x.unsqueeze(1)
        for block in self.crepe:
            x = block(x)
        activation = torch.sigmoid(x.transpose(1, 2).reshape(x.shape[0], -1) @ self.crepe_dense + self.crepe_dense_bias)
        centre = activation.argmax(dim=1)
        index = centre[:, None] + torch.arange(-4, 5)[None, :]
        bins = self.bin_cents.shape[0]
        valid = (index >= 0) & (index < bins)
        index = index.clamp(0, bins - 1)
        weights = torch.gather(activation, 1, index).double() * valid
        total = weights.sum(dim=1)
        cents = (weights * self.bin_cents[index]).sum(dim=1) / torch.where(total > 0, total, torch.ones_like(total))
        return (10.0 * 2.0 ** (cents / 1200.0)).float(), activation.max(dim=1).values

    @torch.jit.export
    def features(self, block: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """The frames whose windows `block` completes: (f0, confidence, loudness, level)."""
        hop, lookahead = self.hop, self.lookahead
        origin = int(self.counts[0]) - self.audio.shape[0]
        buffer = torch.cat([self.audio, block])
        heard = int(self.counts[0]) + block.shape[0]
        first = int(self.counts[1])
        ready = max(0, (heard - lookahead) // hop + 1 - first)
        self.counts[0] = heard
        self.counts[1] = first + ready
        self.audio = buffer[buffer.shape[0] - self.audio.shape[0]:]
        if ready == 0:
            empty = torch.zeros(0)
            return empty, empty, empty, empty
        end = first * hop + lookahead - origin  # the first frame's windows end here in `buffer`
        span = (ready - 1) * hop
        windows = buffer[end - self.frame:end + span].unfold(0, self.frame, hop)
        f0 = torch.zeros(ready)
        confidence = torch.zeros(ready)
        frames = torch.arange(first, first + ready)
        tracked = torch.nonzero(frames % self.pitch_every == 0).flatten()
        if tracked.numel() > 0:
            f0_tracked, confidence_tracked = self._crepe(windows[tracked])
            f0[tracked] = f0_tracked
            confidence[tracked] = confidence_tracked
        for i in range(ready):  # held from the last tracked frame
            if int(frames[i]) % self.pitch_every == 0:
                self.held[0] = f0[i]
                self.held[1] = confidence[i]
            else:
                f0[i] = self.held[0]
                confidence[i] = self.held[1]
        ahead = min(lookahead, self.loudness_n_fft // 2)
        start = end - lookahead + ahead
        spectra = torch.fft.rfft(buffer[start - self.loudness_n_fft:start + span].unfold(0, self.loudness_n_fft, hop)
                                 * self.loudness_window)
        loudness = _db(self.db_range, (spectra.abs() ** 2 * self.a_weighting).mean(dim=1))
        level = loudness
        if self.power:
            ahead = min(lookahead, self.power_frame // 2)
            start = end - lookahead + ahead
            power_windows = buffer[start - self.power_frame:start + span].unfold(0, self.power_frame, hop).double()
            level = _db(self.db_range, (power_windows ** 2).mean(dim=1))
        return f0, confidence, loudness, level

    # --- decoder and controls -------------------------------------------------------------
    def controls(self, f0: Tensor, level: Tensor, noise_gain: float) -> Tuple[Tensor, Tensor]:
        """Frames of f0 (Hz) and level (dB) -> (harmonic amplitudes [F, K], noise magnitudes
        [F, bands]), the decoder's history carried to the next call."""
        f0_64 = f0.double()
        midi = torch.where(f0_64 <= 0.0, torch.zeros_like(f0_64),
                           12.0 * (torch.log2(torch.clamp(f0_64, min=1e-5)) - self.log2_440) + 69.0).float()
        x = torch.stack([level / self.db_range + 1.0, midi / self.f0_range], dim=1)
        x = (x - self.input_mean) / self.input_std
        sequence = torch.cat([self.input_history, x])
        self.input_history = sequence[sequence.shape[0] - self.input_history.shape[0]:]
        x = _causal_conv(sequence, self.input_conv, 1, f0.shape[0])
        rows = self.histories.shape[1]
        for layer, dilation in enumerate(self.dilations):
            relu = torch.clamp(x, 0.0, 6.0)
            sequence = torch.cat([self.histories[layer, rows - (self.taps - 1) * dilation:], relu])
            self.histories[layer] = torch.cat([self.histories[layer], relu])[relu.shape[0]:]
            y = _causal_conv(sequence, self.kernels[layer], dilation, f0.shape[0])
            x = x + _frame_norm(self.eps, y, self.scales[layer], self.shifts[layer])
        if self.has_out_norm:
            x = _frame_norm(self.eps, x, self.out_norm[0], self.out_norm[1])
        raw = x @ self.dense + self.bias
        k = self.n_harmonics
        order = torch.arange(1, k + 1, dtype=torch.float64)
        audible = f0_64[:, None] * order[None, :] < self.sample_rate / 2.0
        distribution = torch.where(audible, _exp_sigmoid(raw[:, 1:1 + k].double()), torch.zeros(1, dtype=torch.float64))
        total = distribution.sum(dim=1, keepdim=True)
        gain = _exp_sigmoid(raw[:, :1].double()) / torch.where(total != 0.0, total, torch.full_like(total, 1e-7))
        magnitudes = _exp_sigmoid(raw[:, 1 + k:].double() + self.noise_bias).float() * noise_gain
        return (distribution * gain).float(), magnitudes

    # --- synthesis ---------------------------------------------------------------------------
    def synthesize(self, f0: Tensor, amps: Tensor, magnitudes: Tensor) -> Tensor:
        """Newly decoded frames -> the dry audio they complete: their predecessors', one frame
        behind, as a frame's harmonics crossfade into the next frame's and its noise filter
        reaches back into the previous frame's span."""
        hop, frames = self.hop, f0.shape[0]
        decoded = int(self.counts[2])
        base = max(0, decoded - 1) * hop  # the stream's sample at noise_acc[0]: the first unfinished frame's
        # filtered noise: each frame's FIR on its hop of the noise sequence, overlap-added
        at = int(self.counts[3])
        positions = (at + torch.arange(frames * hop)) % self.noise.shape[0]
        self.counts[3] = (at + frames * hop) % self.noise.shape[0]
        firs = magnitudes @ self.impulses
        length, size = hop + firs.shape[1] - 1, self.noise_fft
        filtered = torch.fft.irfft(torch.fft.rfft(self.noise[positions].reshape(frames, hop), size)
                                   * torch.fft.rfft(firs, size), size)
        for i in range(frames):
            position = (decoded + i) * hop - self.crop
            skip = max(0, -position)  # before the stream's start: dropped
            index = position + skip - base
            self.noise_acc[index:index + length - skip] += filtered[i, skip:length]
        self.counts[2] = decoded + frames
        f0_all, amps_all = f0.double(), amps
        if decoded > 0:
            f0_all, amps_all = torch.cat([self.last_f0, f0_all]), torch.cat([self.last_amps[None], amps])
        self.last_f0 = f0_all[-1:].clone()
        self.last_amps = amps_all[-1].clone()
        if f0_all.shape[0] < 2:
            return torch.zeros(0)
        harmonic = self._harmonics(f0_all[:-1], f0_all[1:], amps_all[:-1], amps_all[1:]).reshape(-1)
        done = harmonic.shape[0]
        dry = harmonic + self.noise_acc[:done]
        self.noise_acc = torch.cat([self.noise_acc[done:], torch.zeros(done)])
        return dry

    def _harmonics(self, now: Tensor, following: Tensor, a_now: Tensor, a_next: Tensor) -> Tensor:
        """[F, hop] of harmonics: frequency linear within each frame, the phase from the
        exact anchor carried across frames, the two frames' amplitudes crossfaded."""
        hop = self.hop
        step = 2.0 * math.pi / self.sample_rate
        slope = (following - now) / hop
        j = torch.arange(hop, dtype=torch.float64)
        freq = (now[:, None] + (j[None, :] / hop) * (following - now)[:, None]).float()
        advance = step * (hop * now + slope * hop * (hop - 1) / 2.0)
        anchors = torch.remainder(self.phase + torch.cumsum(advance, 0) - advance, 2.0 * math.pi)
        self.phase = torch.remainder(anchors[-1:] + advance[-1:], 2.0 * math.pi)
        phase = anchors[:, None] + step * (now[:, None] * (j + 1.0)[None, :] + slope[:, None] * (j * (j + 1.0) / 2.0))
        order = torch.arange(1, self.n_harmonics + 1)
        sound = torch.sin(phase[:, :, None] * order.double()).float()
        sound = sound * ((order.float()[None, None, :] * freq[:, :, None]) < float(self.sample_rate / 2))
        acc_now = (sound * a_now[:, None, :]).sum(dim=2)
        acc_next = (sound * a_next[:, None, :]).sum(dim=2)
        return self.fall * acc_now + self.rise * acc_next

    def reverb(self, dry: Tensor) -> Tensor:
        """dry + the impulse response's convolution, a hop at a time."""
        hop = self.hop
        out = torch.empty_like(dry)
        for start in range(0, dry.shape[0], hop):
            chunk = dry[start:start + hop].double()
            spectrum = torch.fft.rfft(torch.cat([self.reverb_previous, chunk]))
            self.reverb_previous = chunk
            self.reverb_line = torch.cat([spectrum[None], self.reverb_line[:-1]])
            wet = torch.fft.irfft((self.reverb_line * self.reverb_spectra).sum(dim=0), 2 * hop)[hop:]
            out[start:start + hop] = (chunk + wet).float()
        return out

    def forward(self, block: Tensor, octaves: int, offset_db: float, noise_gain: float) -> Tensor:
        """A block of 16 kHz audio -> as many samples of the model's, `delay` behind."""
        f0, confidence, loudness, level = self.features(block)
        produced = torch.zeros(0)
        if f0.shape[0] > 0:
            notes = (confidence >= self.sure_pitch) & (loudness > self.sounding_db)
            f0 = f0 * 2.0 ** octaves
            level = torch.clamp(level + offset_db - self.quiet_db * (~notes).float(), -self.db_range, 0.0)
            amps, magnitudes = self.controls(f0, level.float(), noise_gain)
            produced = self.reverb(self.synthesize(f0, amps, magnitudes))
        queue = torch.cat([self.pending, produced])
        self.pending = queue[block.shape[0]:]
        return queue[:block.shape[0]]


def _db(db_range: float, power: Tensor) -> Tensor:
    return torch.clamp(10.0 * torch.log10(torch.clamp(power, min=10 ** (-db_range / 10))), min=-db_range).float()


def _causal_conv(sequence: Tensor, kernel: Tensor, dilation: int, frames: int) -> Tensor:
    """The last `frames` outputs of a dilated convolution over `sequence` [history + frames,
    in] with kernel [taps, in, out]: tap t reaches (taps - 1 - t) x dilation frames back."""
    out = sequence[:frames] @ kernel[0]
    for tap in range(1, kernel.shape[0]):
        out = out + sequence[tap * dilation:tap * dilation + frames] @ kernel[tap]
    return out


def _frame_norm(eps: float, y: Tensor, scale: Tensor, shift: Tensor) -> Tensor:
    mean = y.mean(dim=1, keepdim=True)
    variance = ((y - mean) ** 2).mean(dim=1, keepdim=True)
    return (y - mean) / torch.sqrt(variance + eps) * scale + shift


def load_chain(path: Path) -> Chain:
    with np.load(path) as archive:
        arrays = {k: archive[k] for k in archive.files if k != "settings"}
        settings = BundleSettings.from_json(str(archive["settings"]))
    return Chain(arrays, settings)


class Injected(nn.Module):
    """The chain from given f0 and level frames on (for the parity tests): controls, then
    audio, `frames` at a time."""

    def __init__(self, chain: Chain):
        super().__init__()
        self.chain = chain

    def forward(self, f0: Tensor, level: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        amps, magnitudes = self.chain.controls(f0, level, 1.0)
        return amps, magnitudes, self.chain.reverb(self.chain.synthesize(f0, amps, magnitudes))


def _neutone_class():
    from neutone_sdk import ContinuousNeutoneParameter, WaveformToWaveformBase

    class NasNeutone(WaveformToWaveformBase):
        """`nas play`'s chain for Neutone FX: mono 16 kHz in, the trained instrument out."""

        def get_model_name(self) -> str:
            return self.model.name

        def get_model_authors(self) -> List[str]:
            return ["nas"]

        def get_model_version(self) -> str:
            return self.model.version

        def get_model_short_description(self) -> str:
            return "Plays any monophonic line as the instrument a nas model learnt (DDSP, CNN decoder)."

        def get_model_long_description(self) -> str:
            return ("The line's pitch (CREPE tiny) and loudness drive a DDSP synthesizer trained by nas on recordings "
                    "of one instrument: harmonics, filtered noise and the trained reverb. Octave moves the played "
                    "pitch by whole octaves (-2 to +2); level offsets the loudness the model hears (-24 to +24 dB); "
                    "noise scales the breath and bow noise (0 to 2).")

        def get_technical_description(self) -> str:
            return ("A dilated causal CNN decoder (DDSP-CNN-Tiny) at 250 control frames a second, run on 16 kHz "
                    "audio with 32 ms of lookahead for the pitch and loudness windows.")

        def get_technical_links(self) -> Dict[str, str]:
            return {}  # the SDK fetches each link to check it, which an offline export cannot

        def get_tags(self) -> List[str]:
            return ["timbre transfer", "ddsp", "nas"]

        def get_citation(self) -> str:
            return "Engel et al., DDSP: Differentiable Digital Signal Processing, ICLR 2020."

        def is_experimental(self) -> bool:
            return False

        def get_neutone_parameters(self):
            return [ContinuousNeutoneParameter("octave", "octave shift: -2 to +2 octaves", default_value=0.5),
                    ContinuousNeutoneParameter("level", "level offset: -24 to +24 dB", default_value=0.5),
                    ContinuousNeutoneParameter("noise", "noise gain: 0 to 2", default_value=0.5)]

        @torch.jit.export
        def is_input_mono(self) -> bool:
            return True

        @torch.jit.export
        def is_output_mono(self) -> bool:
            return True

        @torch.jit.export
        def get_native_sample_rates(self) -> List[int]:
            return [16000]

        @torch.jit.export
        def get_native_buffer_sizes(self) -> List[int]:
            return self.model.buffer_sizes

        @torch.jit.export
        def calc_model_delay_samples(self) -> int:
            return self.model.delay

        @torch.jit.export
        def reset_model(self) -> bool:
            self.model.reset()
            return True

        def do_forward_pass(self, x: Tensor, params: Dict[str, Tensor]) -> Tensor:
            octaves = int(torch.round((params["octave"][0] - 0.5) * 4.0))
            offset_db = float((params["level"][0] - 0.5) * 48.0)
            noise_gain = float(params["noise"][0] * 2.0)
            return self.model(x[0], octaves, offset_db, noise_gain)[None]

    return NasNeutone


def export(bundle_path: Path, out: Path) -> None:
    from neutone_sdk.utils import save_neutone_model

    # speed: benchmarks/neutone.py measures it at the hosts' rates, beside nas's own chain
    save_neutone_model(_neutone_class()(load_chain(bundle_path)), out, dump_samples=True, submission=True,
                       speed_benchmark=False)


def parity(bundle_path: Path, inputs_path: Path, output_path: Path) -> None:
    """inputs: `f0_hz`, `level_db` frames and `frames` per call -> `amps`, `magnitudes`,
    `audio` from the scripted injected chain; `audio_in` and `block` -> the whole chain's
    `live` output and its features."""
    scripted = torch.jit.script(Injected(load_chain(bundle_path)))
    results = {}
    with np.load(inputs_path) as inputs, torch.no_grad():
        f0, level, step = (torch.from_numpy(inputs[k]) for k in ("f0_hz", "level_db", "frames"))
        parts = [scripted(f0[i:i + int(step)], level[i:i + int(step)]) for i in range(0, f0.shape[0], int(step))]
        for key, index in (("amps", 0), ("magnitudes", 1), ("audio", 2)):
            results[key] = torch.cat([p[index] for p in parts]).numpy()
        chain = torch.jit.script(load_chain(bundle_path))
        audio, block = torch.from_numpy(inputs["audio_in"]), int(inputs["block"])
        features, outputs = [], []
        for i in range(0, audio.shape[0] - block + 1, block):
            features.append(torch.stack(chain.features(audio[i:i + block])))
        results["features"] = torch.cat(features, dim=1).numpy()
        chain.reset()
        for i in range(0, audio.shape[0] - block + 1, block):
            outputs.append(chain(audio[i:i + block], 0, 0.0, 1.0))
        results["live"] = torch.cat(outputs).numpy()
    np.savez(output_path, **results)


def benchmark(model_path: Path, output_path: Path, seconds: float = 2.0, repeats: int = 5) -> None:
    """model.nm as Neutone FX runs it (the SDK's loader and wrapper, one thread, stereo
    DAW buffers) at 44.1 and 48 kHz in buffers of 128 to 2,048: the delays the SDK reports
    and the median seconds per second of audio over `repeats` runs of `seconds`."""
    import time

    from neutone_sdk.utils import load_neutone_model

    model, _ = load_neutone_model(str(model_path))
    rows = []
    with torch.no_grad():
        for rate in (44100, 48000):
            for size in model.get_native_buffer_sizes():
                model.set_daw_sample_rate_and_buffer_size(rate, size)
                model.reset()
                buffers = torch.rand(int(seconds * rate) // size, 2, size) * 0.2 - 0.1
                for buffer in buffers[:20]:  # warm-up
                    model.forward(buffer)
                runs = []
                for _ in range(repeats):
                    start = time.perf_counter()
                    for buffer in buffers:
                        model.forward(buffer)
                    runs.append((time.perf_counter() - start) / (len(buffers) * size / rate))
                rows.append({"rate": rate, "buffer": size, "buffering_delay": int(model.calc_buffering_delay_samples()),
                             "model_delay": int(model.calc_model_delay_samples()),
                             "seconds_per_second": float(np.median(runs))})
    output_path.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    command, *arguments = sys.argv[1:]
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    if command == "export":
        export(Path(arguments[0]), Path(arguments[1]))
    elif command == "parity":
        parity(*(Path(a) for a in arguments))
    elif command == "benchmark":
        benchmark(Path(arguments[0]), Path(arguments[1]))
    else:
        sys.exit(f"unknown command {command!r}: export, parity or benchmark")
