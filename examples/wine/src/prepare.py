"""Stage `prepare`: the wine dataset as CSV, split into train and test sets."""

from __future__ import annotations

from common import Table, load_params, write_table
from sklearn.datasets import load_wine
from sklearn.model_selection import train_test_split


def main() -> None:
    """Write data/raw.csv and data/prepared/{train,test}.csv."""
    params = load_params("prepare")
    wine = load_wine()
    columns = list(wine.feature_names)
    write_table("data/raw.csv", Table(columns, wine.data, wine.target))

    # Stratified, so that each class keeps its share in both sets.
    X_train, X_test, y_train, y_test = train_test_split(
        wine.data,
        wine.target,
        test_size=float(params["test_size"]),
        random_state=int(params["seed"]),
        stratify=wine.target,
    )
    write_table("data/prepared/train.csv", Table(columns, X_train, y_train))
    write_table("data/prepared/test.csv", Table(columns, X_test, y_test))


if __name__ == "__main__":
    main()
