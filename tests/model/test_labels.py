import pytest

from model.labels import RATINGS, SENTIMENTS, label_from_rating


@pytest.mark.parametrize(
    ("rating", "label"),
    [
        (5, "positive"),
        (4, "positive"),
        ("4", "positive"),
        (3, "neutral"),
        (2, "negative"),
        (1, "negative"),
        (1.0, "negative"),
    ],
)
def test_ratings_map_to_labels(rating: object, label: str) -> None:
    assert label_from_rating(rating) == label


@pytest.mark.parametrize("rating", [0, 6, 3.5, -1, "five", None, True, "", float("nan")])
def test_out_of_range_or_malformed_ratings_are_refused(rating: object) -> None:
    with pytest.raises(ValueError):
        label_from_rating(rating)


def test_every_star_rating_means_exactly_one_label() -> None:
    assert sorted(r for ratings in RATINGS.values() for r in ratings) == [1, 2, 3, 4, 5]
    assert tuple(RATINGS) == SENTIMENTS
    for label, ratings in RATINGS.items():
        assert {label_from_rating(r) for r in ratings} == {label}
