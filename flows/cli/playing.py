"""Playing a trained model: a recording (transfer), an instrument through an audio interface
(play), MIDI notes or feature frames (render)."""

from __future__ import annotations

from pathlib import Path

from flows.cli.common import UserError, refusing

MODEL_HELP = "a run folder (<data root>/<dataset>/runs/<run>) or its model/ or export/"


def add_commands(commands) -> None:
    from nas.play.controls import Playing

    transfer = commands.add_parser("transfer", help="play a monophonic recording with a trained model")
    transfer.add_argument("model", help=MODEL_HELP)
    transfer.add_argument("input", help="audio file (wav, flac, ogg, mp3, ...)")
    transfer.add_argument("-o", "--output", required=True, help="WAV file to write")
    transfer.add_argument("--block", type=int, help="play it as it would play live, through the streaming engine, "
                                                    "this many samples a call (32-4096); default: offline")
    transfer.add_argument("--lookahead", type=int, help="with --block: samples at 16 kHz each frame's pitch and "
                          "loudness windows reach past it, whatever the rate (0-512; default 512, as offline)")
    transfer.set_defaults(run=_transfer)
    play = commands.add_parser("play", help="play a trained model live: an instrument (or a recording) in, the model "
                               "out, through an audio interface")
    play.add_argument("model", nargs="?", help=MODEL_HELP)
    play.add_argument("--input-device", help="the instrument's audio device (PortAudio name or index; default: the "
                                             "system's)")
    play.add_argument("--input-file", help="a recording played in as the instrument, instead of an input device")
    play.add_argument("--output-device", help="where the model plays (PortAudio name or index; default: the system's)")
    play.add_argument("--input-channel", type=int, default=0, help="the input device's channel that carries the "
                                                                   "instrument (from 0; default 0)")
    play.add_argument("--block", type=int, default=128, help="samples per audio callback at the device's rate "
                                                             "(32-4096; default 128)")
    play.add_argument("--lookahead", type=int, help="samples at 16 kHz each frame's pitch and loudness windows reach "
                      "past it, whatever the device's rate (0-512; default 512, as offline; less is sooner, less exact)")
    play.add_argument("--ahead", type=int, help="blocks the chain works ahead of the audio callback (default: those "
                      "that make 8 ms, 1 of 128 at 16 kHz, 3 at 48 kHz; each absorbs a block's worth of delay and adds "
                      "a block of latency)")
    play.add_argument("--seconds", type=float, help="stop after this long (default: the input file's length, or "
                                                    "Ctrl-C)")
    play.add_argument("--record", help="also write what was played to this WAV file")
    play.add_argument("--list-devices", action="store_true", help="list the audio devices and stop")
    play.set_defaults(run=_play)
    render = commands.add_parser("render", help="play a trained model from MIDI notes or f0 and loudness frames")
    render.add_argument("model", help=MODEL_HELP)
    played = render.add_mutually_exclusive_group(required=True)
    played.add_argument("--midi", help="a standard MIDI file, played monophonically (the latest held note sounds)")
    played.add_argument("--features", help="f0 and loudness frames: .npz (f0_hz, loudness_db[, frame_rate]) or a "
                                           "dataset's features.parquet")
    render.add_argument("--source", help="with a features.parquet: the file whose rows to play (default: the first)")
    render.add_argument("-o", "--output", required=True, help="WAV file to write")
    render.add_argument("--block", type=int, help="stream it through the streaming engine, this many samples a call "
                                                  "at the output's rate (32-4096); default: render offline")
    render.add_argument("--rate", type=int, help="the output's sample rate, e.g. 48000 (default: the model's)")
    default = Playing()
    render.add_argument("--vibrato", type=float, default=default.vibrato_cents, metavar="CENTS",
                        help="MIDI: vibrato depth (default 0)")
    render.add_argument("--vibrato-hz", type=float, default=default.vibrato_hz, help="MIDI: vibrato rate")
    render.add_argument("--attack", type=float, default=default.attack_s,
                        help="MIDI: seconds from silence to a note's level")
    render.add_argument("--release", type=float, default=default.release_s,
                        help="MIDI: seconds from a note's level to silence")
    render.add_argument("--bend-range", type=float, default=default.bend_semitones,
                        help="MIDI: semitones of a full pitch bend")
    render.set_defaults(run=_render)


def _check_block(block: int | None) -> None:
    if block is not None and not 32 <= block <= 4096:
        raise UserError(f"--block {block}: blocks are 32 to 4096 samples")


def _playing_errors() -> tuple[type[BaseException], ...]:
    """What a model or an input that cannot be played raises: the user's errors."""
    from nas.engine.stream import NotStreamable
    from nas.play.controls import ControlsError
    from nas.play.device import PlayError
    from nas.play.model import ModelError
    from nas.play.transfer import TransferError

    return ModelError, TransferError, ControlsError, NotStreamable, PlayError, FileNotFoundError, ValueError


def _transfer(args) -> int:
    from nas.data.audio import write_wav
    from nas.play.live import live_transfer
    from nas.play.transfer import transfer

    _check_block(args.block)
    with refusing(*_playing_errors()):
        if args.block:
            audio, done = live_transfer(args.model, args.input, args.block, args.lookahead)
        else:
            audio, done = transfer(args.model, args.input)
    write_wav(Path(args.output), audio, done.rate)
    print(f"{args.output}: {done.describe()}" + (f" (blocks of {args.block})" if args.block else ""))
    return 0


def _device(name: str | None):
    return int(name) if name is not None and name.isdigit() else name


def _play(args) -> int:
    try:
        import sounddevice as sd
    except OSError as error:  # the PortAudio library itself is missing
        raise UserError(f"no audio: {error} (install PortAudio, e.g. Debian's libportaudio2)") from None
    if args.list_devices:
        print(sd.query_devices())
        return 0
    from nas.play.device import device_rate, play
    from nas.play.live import CENTRED
    from nas.play.model import load_engine, run_paths
    from nas.play.rates import convert
    from nas.play.transfer import read_source
    from nas.store.datasets import load_statistics

    _check_block(args.block)
    if not args.model:
        raise UserError("a model (run folder) is needed")
    try:
        with refusing(*_playing_errors()):
            run, dataset_dir = run_paths(args.model)
            engine = load_engine(run)
            statistics = load_statistics(dataset_dir)
            rate = device_rate(_device(args.output_device))
            source = convert(*read_source(Path(args.input_file)), rate) if args.input_file else None
            print(f"playing {run.name} at {rate} Hz in blocks of {args.block} ({1000 * args.block / rate:.1f} ms)"
                  + (f" from {args.input_file}" if args.input_file else "") + "; Ctrl-C stops", flush=True)
            result = play(engine, statistics, args.block, args.seconds,
                          CENTRED if args.lookahead is None else args.lookahead, _device(args.input_device),
                          _device(args.output_device), source, args.record,
                          ahead=args.ahead, rate=rate,
                          input_channel=args.input_channel)
    except KeyboardInterrupt:
        return 130
    print(result.describe())
    return 0


def _render(args) -> int:
    from nas.data.audio import write_wav
    from nas.play.controls import Playing
    from nas.play.render import render

    _check_block(args.block)
    playing = Playing(attack_s=args.attack, release_s=args.release, vibrato_cents=args.vibrato,
                      vibrato_hz=args.vibrato_hz, bend_semitones=args.bend_range)
    with refusing(*_playing_errors()):
        audio, done = render(args.model, args.midi, args.features, args.block, playing, args.source, args.rate)
    write_wav(Path(args.output), audio, done.rate)
    print(f"{args.output}: {done.describe()}")
    return 0
