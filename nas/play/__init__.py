"""Playing a trained model: loading it (`model`), controls from MIDI or feature frames
(`controls`, `render`), a recording played offline (`transfer`) or as it would be live
(`live`), and an audio interface's loop (`device`). The octave and loudness adjustment
toward the dataset is `adjust`'s. Models for the plugins that play DDSP models in a DAW:
DDSP-VST (`ddsp_vst`) and Neutone FX (`neutone`, and `neutone_module` in its own environment)."""
