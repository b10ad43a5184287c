"""DDSP models: typed presets, decoders and the synthesizer they drive."""
