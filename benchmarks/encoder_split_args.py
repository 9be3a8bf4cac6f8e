"""Shared command line of the benchmark scripts that score one encoder on a train / test split pair."""

from __future__ import annotations

import argparse
from typing import Any

import torch

from pcm3.data.store import open_store
from pcm3.tasks.encoders import LoadedEncoder, load_encoder


def add_encoder_split_arguments(p: argparse.ArgumentParser, data: str, train: str, test: str) -> None:
    p.add_argument("--encoder", required=True, help="pcm3 checkpoint or exported encoder")
    p.add_argument("--data", default=data)
    p.add_argument("--train", default=train)
    p.add_argument("--test", default=test)
    p.add_argument("--threads", type=int, default=2)


def open_encoder_and_splits(args: argparse.Namespace) -> tuple[Any, Any, Any, LoadedEncoder]:
    """(store, train split, test split, encoder); sets the torch thread count."""
    torch.set_num_threads(args.threads)
    store = open_store(args.data)
    return store, store.split(args.train), store.split(args.test), load_encoder(args.encoder)
