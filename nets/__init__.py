"""Dense-prediction networks in plain PyTorch; knows nothing of video or the pipeline."""
