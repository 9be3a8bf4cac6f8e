"""Sub-commands of the ``pcm3`` CLI, one module per group."""
