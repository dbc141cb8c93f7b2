"""Stage `train`: fit the model named by `train.model` on the training features."""

from __future__ import annotations

from typing import Any

from common import load_params, read_table, save_model
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression


def build_model(params: dict[str, Any]) -> Any:
    """Return an unfitted classifier from the `train` params."""
    kind = params["model"]
    if kind == "logreg":
        return LogisticRegression(
            C=float(params["C"]),
            max_iter=int(params["max_iter"]),
            random_state=int(params["seed"]),
        )
    if kind == "forest":
        # One job: tree building order, hence the pickle, stays the same every run.
        return RandomForestClassifier(
            n_estimators=int(params["n_estimators"]),
            random_state=int(params["seed"]),
            n_jobs=1,
        )
    raise ValueError(f"params.yaml: train.model must be 'logreg' or 'forest' (got {kind!r})")


def main() -> None:
    """Write models/model.pkl."""
    train = read_table("data/features/train.csv")
    model = build_model(load_params("train"))
    model.fit(train.X, train.y)
    save_model("models/model.pkl", model)


if __name__ == "__main__":
    main()
