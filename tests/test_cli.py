"""``key=value`` overrides anywhere on the command line, for every sub-command that takes them."""

import itertools

import pytest

from pcm3.cli import build_parser, main

# sub-command -> (argv with overrides before, between and after the options, expected overrides)
INTERMIXED = {
    "pretrain": (["pretrain", "a=1", "--config", "C.yaml", "b.c=2", "--out", "O", "--fresh", "d=[1, 2]"],
                 ["a=1", "b.c=2", "d=[1, 2]"]),
    "bench": (["bench", "--config", "C.yaml", "data=X", "--out", "O", "key=v"], ["data=X", "key=v"]),
    "quickstart": (["quickstart", "seed=1", "--out", "O", "tasks.knn.k=5", "--config", "C.yaml", "x=y"],
                   ["seed=1", "tasks.knn.k=5", "x=y"]),
    "eval": (["eval", "knn", "k=3", "--encoder", "raw", "--data", "D", "precision_at=2", "--json", "z=0"],
             ["k=3", "precision_at=2", "z=0"]),
    "doctor": (["doctor", "batch_size=8", "--seconds", "1", "model.bigru.hidden_size=16", "--json"],
               ["batch_size=8", "model.bigru.hidden_size=16"]),
}


@pytest.mark.parametrize("command", sorted(INTERMIXED))
def test_overrides_are_taken_wherever_they_stand_in_order(command):
    argv, expected = INTERMIXED[command]
    args = build_parser().parse_args(argv)
    assert args.command == command and args.overrides == expected


@pytest.mark.parametrize("command", sorted(INTERMIXED))
def test_options_keep_their_values(command):
    argv, _ = INTERMIXED[command]
    args = vars(build_parser().parse_args(argv))
    for option, value in itertools.pairwise(argv):
        if option in ("--config", "--out", "--encoder", "--data"):
            assert str(args[option[2:]]) == value


@pytest.mark.parametrize("command", sorted(INTERMIXED))
def test_a_stray_word_is_still_an_error(command, capsys):
    argv, _ = INTERMIXED[command]
    assert main([*argv, "stray"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: pcm3") and "unrecognized arguments: stray" in err


def test_options_of_commands_without_overrides_are_unchanged(capsys):
    args = build_parser().parse_args(["data", "info", "STORE", "--json"])
    assert args.json and str(args.path) == "STORE" and not hasattr(args, "overrides")
    assert main(["data", "info", "STORE", "a=1"]) == 2
    assert "unrecognized arguments: a=1" in capsys.readouterr().err
