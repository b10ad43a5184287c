"""The constants several parts of nas share, each written once here."""

SAMPLE_RATE = 16000  # the features' rate: CREPE and SwiftF0 take 16 kHz audio; the default records' rate
DB_RANGE = 80.0  # ddsp's loudness floor below 0 dB, and its scale of loudness inputs (F0LoudnessPreprocessor)
F0_RANGE = 127.0  # ddsp's scale of f0 inputs: MIDI / 127
NORMALIZE_EPS = 1e-5  # ddsp.training.nn.normalize_op's epsilon
OPSET = 17  # the ONNX opset of every graph nas writes
DEFAULT_DATA_ROOT = "nas-data"  # where datasets, runs and sweeps go (NAS_DATA_ROOT or --data-root elsewhere)
# Each decoder level input: its feature in dB, and its scaled name (dB / DB_RANGE + 1, as ddsp's preprocessors)
LEVELS = {"loudness": ("loudness_db", "ld_scaled"), "power": ("power_db", "pw_scaled")}
