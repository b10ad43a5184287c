"""Training DDSP models on prepared datasets: input pipeline, run folders, the loop."""
