"""Downstream protocols, one file each, all consuming a frozen or trainable encoder."""
