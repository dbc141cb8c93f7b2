"""Stage `evaluate`: score the model on the test features."""

from __future__ import annotations

from common import load_model, output_path, read_table, write_json
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score


def main() -> None:
    """Write metrics/scores.json and plots/confusion.csv."""
    test = read_table("data/features/test.csv")
    model = load_model("models/model.pkl")
    predicted = model.predict(test.X)

    write_json(
        "metrics/scores.json",
        {
            "accuracy": round(float(accuracy_score(test.y, predicted)), 6),
            "f1_macro": round(float(f1_score(test.y, predicted, average="macro")), 6),
        },
    )

    # Long form (actual, predicted, count): what plotting tools take as a confusion matrix.
    labels = sorted(set(test.y.tolist()) | set(predicted.tolist()))
    matrix = confusion_matrix(test.y, predicted, labels=labels)
    lines = ["actual,predicted,count"]
    for i, actual in enumerate(labels):
        for j, guess in enumerate(labels):
            lines.append(f"{actual},{guess},{matrix[i, j]}")
    output_path("plots/confusion.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
