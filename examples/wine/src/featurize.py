"""Stage `featurize`: optional polynomial features, then standard scaling."""

from __future__ import annotations

from typing import Any

from common import Table, load_params, read_table, write_table
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, PolynomialFeatures, StandardScaler


def main() -> None:
    """Write data/features/{train,test}.csv from data/prepared/."""
    params = load_params("featurize")
    train = read_table("data/prepared/train.csv")
    test = read_table("data/prepared/test.csv")

    degree = int(params["poly_degree"])
    steps: list[Any] = []
    if degree > 1:
        steps.append(PolynomialFeatures(degree=degree, include_bias=False))
    # Scale after expanding, so that products of features get unit variance too.
    if params["scale"]:
        steps.append(StandardScaler())
    else:
        # Identity step that still names its columns, so the CSV header stays right.
        steps.append(FunctionTransformer(feature_names_out="one-to-one"))
    transform = make_pipeline(*steps)

    # Fit on the training set only: the test set must not leak into the features.
    X_train = transform.fit_transform(train.X)
    X_test = transform.transform(test.X)
    columns = [str(c) for c in transform.get_feature_names_out(train.columns)]
    write_table("data/features/train.csv", Table(columns, X_train, train.y))
    write_table("data/features/test.csv", Table(columns, X_test, test.y))


if __name__ == "__main__":
    main()
