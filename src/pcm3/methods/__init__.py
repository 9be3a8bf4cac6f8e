"""Pre-training objectives (PCM3, PCM3++, MoCo, CMD) and their shared MoCo utilities."""
