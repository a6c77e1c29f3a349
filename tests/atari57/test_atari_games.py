"""Game names, reference scores and human-normalised scores (no emulator)."""

from ale_py import roms
import pytest

import atari57


def test_there_are_57_games_each_an_ale_rom():
  assert len(atari57.GAMES) == 57
  assert len(set(atari57.GAMES)) == 57
  assert set(atari57.GAMES) == set(atari57.REFERENCE_SCORES)
  for game in atari57.GAMES:
    assert roms.get_rom_path(game) is not None, game


@pytest.mark.parametrize("spelling,expected", [
    ("space_invaders", "space_invaders"),
    ("SpaceInvaders", "space_invaders"),
    ("spaceinvaders", "space_invaders"),
    ("Space-Invaders", "space_invaders"),
    ("MontezumaRevenge", "montezuma_revenge"),
    ("UpNDown", "up_n_down"),
    ("MsPacman", "ms_pacman"),
])
def test_other_spellings_of_valid_names_are_accepted(spelling, expected):
  assert atari57.canonical_name(spelling) == expected


@pytest.mark.parametrize("wrong,suggested", [
    ("space_invader", "space_invaders"),
    ("montezumas_revenge", "montezuma_revenge"),
    ("breakut", "breakout"),
    ("pacman", "ms_pacman"),
])
def test_unknown_name_lists_the_closest_valid_names(wrong, suggested):
  with pytest.raises(ValueError, match=f"Unknown Atari-57 game '{wrong}'.*"
                     f"Closest valid names: .*'{suggested}'"):
    atari57.canonical_name(wrong)


def test_environments_reject_unknown_names_before_building():
  with pytest.raises(ValueError, match="'breakout'"):
    atari57.make("breakut")
  with pytest.raises(ValueError, match="'breakout'"):
    atari57.make_batched("breakut", 2)


def test_human_score_normalises_to_100_percent_and_random_to_zero():
  for game, reference in atari57.REFERENCE_SCORES.items():
    assert atari57.normalized_score(game, reference.human) == pytest.approx(
        100.0, abs=1e-10), game
    assert atari57.normalized_score(game, reference.random) == pytest.approx(
        0.0, abs=1e-10), game


def test_normalised_score_values():
  # Pong: random -20.7, human 14.6, so a draw (0) is 100 x 20.7 / 35.3 %.
  assert atari57.normalized_score("Pong", 0.0) == pytest.approx(58.64023,
                                                                abs=1e-5)
  # Breakout: random 1.7, human 30.5; 403.1 is 100 x 401.4 / 28.8 %.
  assert atari57.normalized_score("breakout", 403.1) == pytest.approx(1393.75)
  with pytest.raises(ValueError, match="finite"):
    atari57.normalized_score("pong", float("nan"))


def test_suite_median_and_mean_over_a_known_set():
  scores = {
      "pong": 14.6,                        # human: 100%
      "breakout": 1.7,                     # random: 0%
      "boxing": 0.1 + 2 * 12.0,            # 200% (random 0.1, human 12.1)
      "SpaceInvaders": 148.0 + 3 * 1520.7,  # 300% (random 148, human 1668.7)
  }
  suite = atari57.suite_scores(scores)
  assert suite.num_games == 4
  assert suite.median == pytest.approx(150.0)
  assert suite.mean == pytest.approx(150.0)
  assert suite.capped_mean == pytest.approx(75.0)


def test_suite_scores_reject_empty_and_duplicate_games():
  with pytest.raises(ValueError, match="at least one game"):
    atari57.suite_scores({})
  with pytest.raises(ValueError, match="'space_invaders' is given twice"):
    atari57.suite_scores({"space_invaders": 1.0, "SpaceInvaders": 2.0})
