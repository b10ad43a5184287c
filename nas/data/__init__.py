"""The data half: audio in, checked and versioned; CREPE f0 and loudness by Apache Beam; TFRecords
in ddsp's schema read back by ddsp's reader; ddsp's dataset statistics; the preparation stages."""
